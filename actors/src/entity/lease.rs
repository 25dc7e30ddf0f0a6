//! An entity's membership in its directory, held by the actor for as long as it lives.

use std::sync::Arc;

use tracing::warn;

use super::EntityStats;

/// Given to an entity when it is activated; the entity keeps it in a field. Dropping it (the
/// actor value is dropped once the actor has stopped for good) tells the directory that the key
/// may be activated again.
pub struct Lease {
    key: String,
    stats: Arc<EntityStats>,
    on_drop: Option<Box<dyn FnOnce() + Send>>,
}

impl Lease {
    pub(crate) fn new(
        key: String,
        stats: Arc<EntityStats>,
        on_drop: Box<dyn FnOnce() + Send>,
    ) -> Self {
        Self {
            key,
            stats,
            on_drop: Some(on_drop),
        }
    }

    /// To be called from `Supervised::restarting`: counts the restart.
    pub fn restarting(&self) {
        self.stats.restarted();
        warn!(kind = self.stats.kind(), key = %self.key, "actor restarted by its supervisor");
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(on_drop) = self.on_drop.take() {
            on_drop();
        }
    }
}
