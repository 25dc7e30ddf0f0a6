//! What tenant actors are asked.

use actix::Message;
use chrono::{DateTime, Utc};
use portcullis_engine::{Decision, Event};

/// Judge these events (all of one tenant), in order, with one generation of its policy.
pub struct Judge {
    pub events: Vec<Event>,
    pub now: DateTime<Utc>,
    /// Each event's anomaly score, for `input.context.anomaly_score`; empty, or shorter than
    /// `events`: 0 for those without one.
    pub anomaly_scores: Vec<f64>,
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Judged: the event comes back masked as the judging bundle says.
    Judged(Decision),
    /// Not judged, for this reason (its dead letter's): a failed evaluation, a panic, or a
    /// batch cut short by the time limit. The event comes back whole, for replay.
    Refused(String),
    /// Not looked at: the actor restarted after a panic on an earlier event of the batch.
    /// Ask again; the restarted actor judges it.
    Unjudged,
}

impl Message for Judge {
    /// The events come back with their verdicts, in the order given, so callers need not keep
    /// a copy.
    type Result = Vec<(Event, Verdict)>;
}
