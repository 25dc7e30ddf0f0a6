//! The trust of a model line's subjects (principals or agents), kept by its actor: which events
//! changed whose trust, in an order that says which stored state is the latest.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};

use super::{TrustState, FULL_TRUST};
use crate::anomaly::AnomalySettings;

/// Anomalous events remembered as counted, so that one delivered again (a duplicate, a
/// redelivery after a crash) does not take trust twice.
pub const MAX_COUNTED_ANOMALIES: usize = 10_000;

/// Subjects followed at once. Past it, subjects back at full trust are forgotten first (they
/// are as if never seen); a line with more distrusted subjects than this follows no new ones.
pub const MAX_TRUST_SUBJECTS: usize = 100_000;

/// A subject's trust moved, or an anomaly was counted: what to store. `seq` orders a line's
/// changes of the same event time, so that of two writes the later change wins whatever order
/// they commit in.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustChange {
    pub subject: String,
    pub state: TrustState,
    pub trust: u8,
    pub seq: i64,
}

#[derive(Debug, Default)]
pub struct TrustBook {
    subjects: HashMap<String, (TrustState, u8)>,
    seq: i64,
    /// The anomalous events counted, oldest first.
    counted: HashSet<String>,
    counted_order: VecDeque<String>,
}

impl TrustBook {
    /// A book resumed from stored states (`(subject, state, seq)`), the ids of the anomalous
    /// events they counted, oldest first, and the line's last `seq` stored.
    pub fn resumed(
        stored: impl IntoIterator<Item = (String, TrustState, i64)>,
        counted: impl IntoIterator<Item = String>,
        last_seq: i64,
    ) -> Self {
        let mut book = TrustBook {
            seq: last_seq,
            ..TrustBook::default()
        };
        for (subject, state, seq) in stored {
            book.seq = book.seq.max(seq);
            let trust = super::trust_of_risk(state.risk);
            book.subjects.insert(subject, (state, trust));
        }
        for event in counted {
            book.remember(event);
        }
        book
    }

    /// Counts event `event_id` of `subject`, scored `score` at `at`: the subject's trust after
    /// it, and what to store if an anomaly was counted or the trust it shows moved. An
    /// anomalous event already counted takes nothing more.
    pub fn observe(
        &mut self,
        event_id: &str,
        subject: &str,
        score: f64,
        at: DateTime<Utc>,
        settings: &AnomalySettings,
    ) -> (u8, Option<TrustChange>) {
        let mut score = score;
        let mut anomaly = false;
        if super::anomaly_weight(score, settings.threshold) > 0.0 {
            if self.counted.contains(event_id) {
                score = 0.0;
            } else {
                self.remember(event_id.to_owned());
                anomaly = true;
            }
        }
        if !self.subjects.contains_key(subject) {
            if super::anomaly_weight(score, settings.threshold) == 0.0 {
                return (FULL_TRUST, None);
            }
            if self.subjects.len() >= MAX_TRUST_SUBJECTS {
                self.forget_trusted(at, settings);
                if self.subjects.len() >= MAX_TRUST_SUBJECTS {
                    return (FULL_TRUST, None);
                }
            }
        }
        let (state, shown) = self.subjects.entry(subject.to_owned()).or_insert((
            TrustState {
                risk: 0.0,
                as_of: at,
            },
            FULL_TRUST,
        ));
        state.observe(score, at, settings);
        let trust = super::trust_of_risk(state.risk);
        // At 0 an anomaly moves no whole number, but its time must still be stored, or the
        // stored trust would come back from the first one.
        if trust == *shown && !anomaly {
            return (trust, None);
        }
        *shown = trust;
        self.seq += 1;
        let change = TrustChange {
            subject: subject.to_owned(),
            state: *state,
            trust,
            seq: self.seq,
        };
        (trust, Some(change))
    }

    /// A subject's trust at `at`.
    pub fn trust(&self, subject: &str, at: DateTime<Utc>, half_life_secs: u32) -> u8 {
        self.subjects
            .get(subject)
            .map_or(FULL_TRUST, |(s, _)| s.trust_at(at, half_life_secs))
    }

    pub fn len(&self) -> usize {
        self.subjects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    fn remember(&mut self, event_id: String) {
        if self.counted.insert(event_id.clone()) {
            self.counted_order.push_back(event_id);
            if self.counted_order.len() > MAX_COUNTED_ANOMALIES {
                if let Some(oldest) = self.counted_order.pop_front() {
                    self.counted.remove(&oldest);
                }
            }
        }
    }

    fn forget_trusted(&mut self, at: DateTime<Utc>, settings: &AnomalySettings) {
        self.subjects
            .retain(|_, (s, _)| s.trust_at(at, settings.trust_half_life_secs) < FULL_TRUST);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn changes_are_told_once_and_in_order() {
        let s = AnomalySettings::default();
        let mut book = TrustBook::default();
        // Ordinary subjects are not followed at all.
        assert_eq!(book.observe("e0", "bob", 0.5, t(0), &s), (100, None));
        assert!(book.is_empty());
        let (trust, change) = book.observe("e1", "alice", 0.7, t(0), &s);
        assert_eq!(trust, 70);
        let first = change.unwrap();
        assert_eq!(
            (first.subject.as_str(), first.trust, first.seq),
            ("alice", 70, 1)
        );
        // The same trust again is not a change; a second anomaly is.
        assert_eq!(book.observe("e2", "alice", 0.6, t(1), &s), (70, None));
        // The same anomalous event again (a redelivery) takes nothing more.
        assert_eq!(book.observe("e1", "alice", 0.7, t(1), &s), (70, None));
        let (trust, change) = book.observe("e3", "alice", 0.7, t(1), &s);
        assert_eq!((trust, change.unwrap().seq), (49, 2));
        assert_eq!(book.trust("alice", t(3601), 3600), 75);
        // At no trust left, another anomaly still changes when it was last seen.
        let (trust, change) = book.observe("e9", "mallory", 1.0, t(5), &s);
        assert_eq!((trust, change.unwrap().state.as_of), (0, t(5)));
        let (trust, change) = book.observe("e10", "mallory", 1.0, t(9), &s);
        assert_eq!((trust, change.unwrap().state.as_of), (0, t(9)));
        assert_eq!(book.trust("carol", t(0), 3600), 100);
        // Resumed from what was stored, the order goes on past it.
        let mut resumed =
            TrustBook::resumed([("alice".to_owned(), first.state, 7)], ["e1".to_owned()], 7);
        assert_eq!(resumed.observe("e1", "alice", 0.7, t(1), &s), (70, None));
        let (_, change) = resumed.observe("e4", "alice", 0.9, t(2), &s);
        assert_eq!(change.unwrap().seq, 8);
    }
}
