//! `[actors]`: the arbiter threads and the limits of each kind of entity actor.

use std::time::Duration;

use portcullis_actors::EntityLimits;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActorsConfig {
    /// Arbiter threads the entity actors share; 0 means one per CPU core.
    pub workers: usize,
    /// Tenant actors (one per tenant with traffic).
    pub tenant: EntityConfig,
    /// Segment actors (one per segment with versions to send); idle ones passivate quickly,
    /// their state is in Postgres.
    pub segment: EntityConfig,
    /// Agent sessions (one per agent heard from lately); idle ones passivate, their record is
    /// in Postgres.
    pub agent_session: EntityConfig,
    /// Anomaly-model actors (one per tenant and scope with events); activating one warms its
    /// principals' behaviour up on recent events, so they stay live for an hour by default.
    pub anomaly_model: EntityConfig,
}

impl Default for ActorsConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            tenant: EntityConfig::default(),
            segment: EntityConfig {
                idle_secs: 60,
                ..EntityConfig::default()
            },
            agent_session: EntityConfig {
                mailbox: 16,
                idle_secs: 300,
                max_live: 1_000_000,
            },
            anomaly_model: EntityConfig {
                idle_secs: 3600,
                ..EntityConfig::default()
            },
        }
    }
}

/// Limits of one kind of entity actor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntityConfig {
    /// Mailbox capacity of each actor: senders wait when it is full (backpressure).
    pub mailbox: usize,
    /// An actor with no message for this long is passivated (its state stays in the store).
    pub idle_secs: u64,
    /// Most live actors of the kind; past it, the least recently used is passivated.
    pub max_live: usize,
}

/// The defaults suit tenants: few keys, each busy.
impl Default for EntityConfig {
    fn default() -> Self {
        let limits = EntityLimits::default();
        Self {
            mailbox: limits.mailbox,
            idle_secs: limits.idle_after.as_secs(),
            max_live: limits.max_live,
        }
    }
}

impl EntityConfig {
    pub fn limits(&self) -> EntityLimits {
        EntityLimits {
            idle_after: Duration::from_secs(self.idle_secs.max(1)),
            max_live: self.max_live,
            mailbox: self.mailbox,
        }
    }
}
