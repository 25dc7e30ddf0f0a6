use actix::Message;
use chrono::{DateTime, Utc};
use portcullis_engine::policy::{Answer, RulePath};
use portcullis_engine::{Decision, Event, PolicyError, TenantPolicy};

/// Judge these events (all of one tenant) in order.
pub struct Evaluate {
    pub events: Vec<Event>,
    pub now: DateTime<Utc>,
}

/// One result per event, in the order given: a decision, or why none could be made.
pub type Outcome = Result<Decision, String>;

impl Message for Evaluate {
    /// The events come back with their outcomes, so callers need not keep a copy.
    type Result = Vec<(Event, Outcome)>;
}

/// A decision API query: evaluate `path` (below the tenant's package) on `input`.
pub struct Query {
    pub path: RulePath,
    pub input: Option<serde_json::Value>,
    pub now: DateTime<Utc>,
}

/// A query's answer, with the input as it may be logged (the tenant's mask applied).
#[derive(Debug)]
pub struct QueryReply {
    pub answer: Answer,
    pub logged_input: Option<serde_json::Value>,
    /// JSON pointers the mask removed from `logged_input`.
    pub erased: Vec<String>,
}

impl Message for Query {
    type Result = Result<QueryReply, PolicyError>;
}

/// Serve this newly compiled policy from now on (hot reload), unless the actor already serves a
/// later generation.
pub struct Install {
    pub policy: TenantPolicy,
    pub generation: u64,
}

impl Message for Install {
    type Result = ();
}
