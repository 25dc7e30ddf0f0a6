use actix::Message;
use chrono::{DateTime, Utc};
use portcullis_engine::{Decision, Event};

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
