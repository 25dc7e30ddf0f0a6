//! The rows a message produces: one set per message, which each capability extends.
//!
//! A batch is a slice of row sets, one per message in order; sinks write a whole slice in one
//! transaction. Keeping the sets apart is what lets a batch Postgres refuses for its content be
//! written message by message without judging anything again.

use std::collections::BTreeMap;

use portcullis_engine::{DeadLetter, Decision, Event};

use super::observe::Observed;
use crate::approvals::AgentApproval;
use crate::evidence::ReceiptRow;

/// Everything one message produced. A capability adds its rows here (anomaly scores,
/// violations, receipts, agent replies) and a table for them in each sink.
#[derive(Debug, Default, Clone)]
pub struct RowSet {
    /// Judged events, masked as their bundle says.
    pub events: Vec<Event>,
    /// One per judged event, in the same order.
    pub decisions: Vec<Decision>,
    pub dead_letters: Vec<DeadLetter>,
    /// Dead letters these rows finally resolve (a replay that went through).
    pub resolves: Vec<String>,
    /// Dead letters a replay could still not process: `(dead letter id, why)`.
    pub replay_failures: Vec<(String, String)>,
    /// Judged events whose observation leaves rows: features a training session collects,
    /// anomalies, trust changes.
    pub observed: Vec<Observed>,
    /// One receipt per decision, when evidence is on.
    pub receipts: Vec<ReceiptRow>,
    /// With receipts: each judged event's record as compact JSON, written once, hashed into
    /// its receipt and stored as the event's `raw`.
    pub raw_json: Vec<Vec<u8>>,
    /// Requests for approval asked by agents' events (`approvals::agent_requests`).
    pub agent_approvals: Vec<AgentApproval>,
}

impl RowSet {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.decisions.is_empty()
            && self.dead_letters.is_empty()
            && self.resolves.is_empty()
            && self.replay_failures.is_empty()
            && self.observed.is_empty()
            && self.receipts.is_empty()
            && self.agent_approvals.is_empty()
    }

    /// A message set aside: nothing but its dead letter.
    pub fn dead_letter(dead: DeadLetter) -> Self {
        Self {
            dead_letters: vec![dead],
            ..Default::default()
        }
    }
}

/// Rows newly stored, by table (duplicates from redelivery are not counted).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteCounts(BTreeMap<&'static str, u64>);

impl WriteCounts {
    /// Rows newly stored in `table`.
    pub fn of(&self, table: &str) -> u64 {
        self.0.get(table).copied().unwrap_or(0)
    }

    pub fn set(&mut self, table: &'static str, rows: u64) {
        self.0.insert(table, rows);
    }

    pub fn add(&mut self, other: &WriteCounts) {
        for (table, rows) in &other.0 {
            *self.0.entry(table).or_default() += rows;
        }
    }

    /// Every table with rows stored.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().map(|(t, n)| (*t, *n))
    }
}
