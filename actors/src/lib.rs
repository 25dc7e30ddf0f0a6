//! Portcullis actors: live state and concurrency on top of the pure `engine`.
//!
//! One supervised [`TenantActor`] per tenant owns that tenant's compiled policy. The
//! [`TenantDirectory`] activates an actor on a tenant's first event and places it on one of a
//! fixed set of arbiters by hash of the tenant id, so one tenant's events are judged in order and
//! different tenants run in parallel.

mod bundle_source;
mod directory;
mod load;
mod local_query;
mod messages;
mod slow_lane;
mod tenant;

pub use bundle_source::{BundleSource, LoadError};
pub use directory::{DirectoryError, TenantDirectory};
pub use load::{
    Activation, ActivationError, ActivationObserver, BundleStatus, PolicyLoader, Serving,
};
pub use local_query::{FailedQuery, QueryError};
pub use messages::{Evaluate, Install, Outcome, Query, QueryReply};
pub use slow_lane::{SlowLane, SLOW_LANE_THREAD};
pub use tenant::{TenantActor, LIMIT_STOPS_PER_BATCH};
