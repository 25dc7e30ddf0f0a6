//! Portcullis actors: live state and concurrency on top of the pure `engine`.
//!
//! - [`entity`]: the generic directory of supervised entity actors (activate on first message,
//!   passivate when idle or past a cap, restart after a panic with state reloaded);
//! - [`policy`]: the policy store, where each tenant's compiled bundle is published once per
//!   generation and read by everyone, and the decision API's query path with its slow lane;
//! - [`tenant`]: the tenant entity, which judges its tenant's events;
//! - [`segment`]: the segment entity, which sends a segment's policy versions to its agents;
//! - [`agent`]: the agent-session entity, which answers an agent's hellos and records its status;
//! - [`anomaly`]: the anomaly-model entity, which computes events' features and scores them;
//! - [`protection`]: the protection board, each unit's arrivals and level;
//! - [`signals`]: the signal board, external trust signals that last.

pub mod agent;
pub mod anomaly;
pub mod entity;
pub mod policy;
pub mod protection;
pub mod segment;
pub mod signals;
pub mod tenant;

pub use agent::{AgentSession, AgentStore, FromAgent, SegmentsChanged, SessionError, SessionState};
pub use anomaly::{
    Finding, ModelActor, ModelState, ModelStore, ModelStoreError, Observation, Observe, Reload,
    StoredTrust,
};
pub use entity::{
    Arbiters, Entity, EntityCounts, EntityDirectory, EntityError, EntityLimits, EntityStats,
};
pub use policy::{
    answer_query, Activation, ActivationObserver, BundleSource, BundleStatus, FailedQuery,
    LoadError, PolicySlot, PolicyStore, PolicyUnavailable, Query, QueryError, QueryReply,
    ServingPolicy, SlowLane, SLOW_LANE_THREAD,
};
pub use protection::{Hold, ProtectionBoard, UnitConfig, UnitObserved};
pub use segment::{
    Claimed, Flush, FlushError, Flushed, OutboxError, OutgoingVersion, SegmentActor, SegmentOutbox,
};
pub use signals::{SignalBoard, StoredSignal};
pub use tenant::{
    AnomalyContext, Judge, TenantActor, TenantDirectory, Verdict, LIMIT_STOPS_PER_BATCH,
};
