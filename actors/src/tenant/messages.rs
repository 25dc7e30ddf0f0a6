//! What tenant actors are asked.

use actix::Message;
use chrono::{DateTime, Utc};
use portcullis_engine::protection::UnitProtection;
use portcullis_engine::{Decision, Event};

/// Judge these events (all of one tenant), in order, with one generation of its policy.
pub struct Judge {
    pub events: Vec<Event>,
    pub now: DateTime<Utc>,
    /// What the anomaly models said of each event, for `input.context`; empty, or shorter
    /// than `events`: the neutral context for those without.
    pub anomaly: Vec<AnomalyContext>,
    /// The protection of each event's unit, for `input.context`; empty, or shorter than
    /// `events`: permissive for those without (no configured unit covers them).
    pub protection: Vec<Option<UnitProtection>>,
    /// The external trust signals that last about each event's principal or agent; empty, or
    /// shorter than `events`: none for those without.
    pub signals: Vec<std::sync::Arc<[portcullis_engine::signals::ActiveSignal]>>,
}

/// An event's anomaly score and its subject's trust, as policy reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyContext {
    /// `input.context.anomaly_score`.
    pub score: f64,
    /// `input.context.principal_trust`, 0 to 100.
    pub trust: f64,
}

impl Default for AnomalyContext {
    /// No model scored the event.
    fn default() -> Self {
        Self {
            score: 0.0,
            trust: 100.0,
        }
    }
}

/// What became of one event.
// Nearly every verdict is a decision: boxing it would add an allocation per event for the
// rare refusal's sake.
#[allow(clippy::large_enum_variant)]
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
