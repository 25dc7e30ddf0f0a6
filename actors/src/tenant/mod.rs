//! The tenant entity: judges one tenant's events with its serving policy.

mod actor;
mod messages;

pub use actor::{TenantActor, TenantDirectory, LIMIT_STOPS_PER_BATCH};
pub use messages::{AnomalyContext, Judge, Verdict};
