//! How many entities of a kind may be live, for how long, and how much each may have queued.

use std::time::Duration;

/// Limits of one kind of entity. Defaults suit tenants; kinds with many more keys (agent
/// sessions) set a larger cap and a shorter idle time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityLimits {
    /// An entity with no message for this long is passivated.
    pub idle_after: Duration,
    /// Most live entities of the kind; past it, the least recently used is passivated.
    pub max_live: usize,
    /// Mailbox capacity of each entity: senders wait (`send().await`) when it is full.
    pub mailbox: usize,
}

impl Default for EntityLimits {
    fn default() -> Self {
        Self {
            idle_after: Duration::from_secs(600),
            max_live: 100_000,
            mailbox: 64,
        }
    }
}

impl EntityLimits {
    /// How often idle entities are looked for: often enough that an entity lives at most about
    /// a quarter longer than `idle_after`, and never more than once every 10 ms.
    pub(crate) fn sweep_every(&self) -> Duration {
        (self.idle_after / 4).clamp(Duration::from_millis(10), Duration::from_secs(30))
    }
}
