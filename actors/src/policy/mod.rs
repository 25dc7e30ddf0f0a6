//! Tenant policies: where bundles come from, the store that compiles and publishes them, and
//! how decision API queries are answered from it.

mod bundle_source;
mod query;
mod serving;
mod slow_lane;
mod store;

pub use bundle_source::{BundleSource, LoadError};
pub use query::{answer_query, FailedQuery, Query, QueryError, QueryReply};
pub use serving::ServingPolicy;
pub use slow_lane::{SlowLane, SLOW_LANE_THREAD};
pub use store::{
    Activation, ActivationObserver, BundleStatus, PolicySlot, PolicyStore, PolicyUnavailable,
};
