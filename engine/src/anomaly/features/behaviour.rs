//! Behaviour per principal, as GuardDuty and Sentinel's UEBA describe theirs: is this the first
//! time this principal calls this API, from this address, with this client, and how does its
//! volume now compare with its own recent rate. The model's actor keeps one history per
//! principal and asks it about each event in order.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Values remembered per principal and kind (APIs, addresses, clients). Past this, a value not
/// remembered counts as new: memory stays bounded for a principal that calls everything.
pub const MAX_REMEMBERED: usize = 1024;
/// Principals remembered per model; past this the one seen longest ago is forgotten.
pub const MAX_PRINCIPALS: usize = 100_000;
/// The window events are counted in.
const WINDOW_SECS: i64 = 300;
/// How much a window's count moves the principal's usual rate.
const RATE_ALPHA: f64 = 0.3;

/// What a principal's history says about one event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    pub new_action: bool,
    pub new_address: bool,
    pub new_client: bool,
    /// Events in the current five-minute window over the principal's usual count per window
    /// (at least 1): 1 is normal, 20 is a burst.
    pub rate_vs_usual: f64,
}

/// One principal's history.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PrincipalHistory {
    actions: HashSet<String>,
    addresses: HashSet<String>,
    clients: HashSet<String>,
    window_start: i64,
    in_window: u32,
    /// Exponentially weighted count per window, over past windows.
    usual: f64,
    last_seen: i64,
}

impl PrincipalHistory {
    /// Records an event and says how it compares with what came before it.
    pub fn observe(
        &mut self,
        time: DateTime<Utc>,
        action: &str,
        address: Option<&str>,
        client: Option<&str>,
    ) -> Behaviour {
        let at = time.timestamp();
        self.roll(at);
        self.in_window = self.in_window.saturating_add(1);
        self.last_seen = self.last_seen.max(at);
        Behaviour {
            new_action: remember(&mut self.actions, action),
            new_address: address.is_some_and(|a| remember(&mut self.addresses, a)),
            new_client: client.is_some_and(|c| remember(&mut self.clients, c)),
            rate_vs_usual: f64::from(self.in_window) / self.usual.max(1.0),
        }
    }

    /// Closes the windows that ended before `at`: each folds its count into the usual rate (an
    /// empty window lowers it). An event older than the current window counts in the current one.
    fn roll(&mut self, at: i64) {
        let window = at.div_euclid(WINDOW_SECS) * WINDOW_SECS;
        if self.in_window == 0 && self.usual == 0.0 {
            self.window_start = window;
            return;
        }
        if window <= self.window_start {
            return;
        }
        let closed = (window - self.window_start) / WINDOW_SECS;
        self.usual = RATE_ALPHA * f64::from(self.in_window) + (1.0 - RATE_ALPHA) * self.usual;
        // The empty windows in between, at most a day's worth (the rest changes nothing).
        let empty = (closed - 1).clamp(0, 288) as i32;
        self.usual *= (1.0 - RATE_ALPHA).powi(empty);
        self.in_window = 0;
        self.window_start = window;
    }
}

/// Whether `value` is new to `seen`, remembering it if there is room.
fn remember(seen: &mut HashSet<String>, value: &str) -> bool {
    if seen.contains(value) {
        return false;
    }
    if seen.len() < MAX_REMEMBERED {
        seen.insert(value.to_owned());
    }
    true
}

/// What a history needs of an event seen before (read back from storage to warm a book up).
#[derive(Debug, Clone, PartialEq)]
pub struct PastEvent {
    pub principal: String,
    pub time: DateTime<Utc>,
    pub action: String,
    pub address: Option<String>,
    /// The client family (CloudTrail); `None` for device events.
    pub client: Option<String>,
}

/// The histories of a model's principals, bounded.
#[derive(Debug, Default)]
pub struct BehaviourBook {
    principals: HashMap<String, PrincipalHistory>,
}

impl BehaviourBook {
    /// A book that has seen `past`, oldest first: after a restart, principals are not all new.
    pub fn warmed_up(past: &[PastEvent]) -> Self {
        let mut book = BehaviourBook::default();
        for e in past {
            book.observe(
                &e.principal,
                e.time,
                &e.action,
                e.address.as_deref(),
                e.client.as_deref(),
            );
        }
        book
    }

    pub fn observe(
        &mut self,
        principal: &str,
        time: DateTime<Utc>,
        action: &str,
        address: Option<&str>,
        client: Option<&str>,
    ) -> Behaviour {
        // Looked up by reference first: the principal's name is copied only the first time.
        if let Some(history) = self.principals.get_mut(principal) {
            return history.observe(time, action, address, client);
        }
        if self.principals.len() >= MAX_PRINCIPALS {
            self.forget_oldest();
        }
        self.principals
            .entry(principal.to_owned())
            .or_default()
            .observe(time, action, address, client)
    }

    pub fn len(&self) -> usize {
        self.principals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }

    /// Forgets the least recently seen tenth (exactly: ties do not take more with them), so
    /// that eviction is rare, not once per event.
    fn forget_oldest(&mut self) {
        let mut seen: Vec<(i64, String)> = self
            .principals
            .iter()
            .map(|(p, h)| (h.last_seen, p.clone()))
            .collect();
        let cut = (seen.len() / 10).max(1);
        seen.select_nth_unstable(cut - 1);
        for (_, principal) in &seen[..cut] {
            self.principals.remove(principal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn first_times_are_new_and_repeats_are_not() {
        let mut h = PrincipalHistory::default();
        let b = h.observe(at(0), "ListBuckets", Some("10.0.0.1"), Some("aws-cli"));
        assert!(b.new_action && b.new_address && b.new_client);
        let b = h.observe(at(1), "ListBuckets", Some("10.0.0.1"), Some("aws-cli"));
        assert!(!b.new_action && !b.new_address && !b.new_client);
        let b = h.observe(at(2), "DeleteTrail", Some("10.0.0.1"), Some("boto"));
        assert!(b.new_action && !b.new_address && b.new_client);
        // No address is never "new".
        assert!(!h.observe(at(3), "ListBuckets", None, None).new_address);
    }

    #[test]
    fn a_burst_stands_out_against_the_usual_rate() {
        let mut h = PrincipalHistory::default();
        // Two events per five minutes for two hours.
        for w in 0..24 {
            for i in 0..2 {
                h.observe(at(w * 300 + i), "GetObject", None, None);
            }
        }
        let steady = h
            .observe(at(24 * 300), "GetObject", None, None)
            .rate_vs_usual;
        assert!(steady < 1.0, "{steady}");
        let mut burst = 0.0;
        for i in 1..40 {
            burst = h
                .observe(at(24 * 300 + i), "GetObject", None, None)
                .rate_vs_usual;
        }
        assert!(burst > 15.0, "{burst}");
        // A day of silence brings the usual rate down: the first event after it is not a burst
        // against yesterday's busier rate, and the usual rate never goes negative.
        let after = h
            .observe(at(24 * 300 + 86_400), "GetObject", None, None)
            .rate_vs_usual;
        assert_eq!(after, 1.0);
    }

    #[test]
    fn a_book_warmed_up_on_the_past_knows_its_principals() {
        let past: Vec<PastEvent> = (0..10)
            .map(|i| PastEvent {
                principal: "alice".into(),
                time: at(i * 60),
                action: "GetObject".into(),
                address: Some("10.0.0.1".into()),
                client: Some("aws-cli".into()),
            })
            .collect();
        let mut book = BehaviourBook::warmed_up(&past);
        let b = book.observe(
            "alice",
            at(700),
            "GetObject",
            Some("10.0.0.1"),
            Some("aws-cli"),
        );
        assert!(!b.new_action && !b.new_address && !b.new_client);
        let b = book.observe("bob", at(700), "GetObject", None, None);
        assert!(b.new_action);
    }

    #[test]
    fn memory_is_bounded() {
        let mut h = PrincipalHistory::default();
        for i in 0..(MAX_REMEMBERED + 10) {
            h.observe(at(0), &format!("Api{i}"), None, None);
        }
        assert_eq!(h.actions.len(), MAX_REMEMBERED);
        // Past the bound, a value not remembered still counts as new.
        assert!(h.observe(at(1), "Api99999", None, None).new_action);

        let mut book = BehaviourBook::default();
        for i in 0..(MAX_PRINCIPALS + 1) {
            book.observe(&format!("p{i}"), at(i as i64), "X", None, None);
        }
        assert!(book.len() <= MAX_PRINCIPALS, "{}", book.len());
        // The newest is kept, the oldest forgotten.
        assert!(book.principals.contains_key(&format!("p{MAX_PRINCIPALS}")));
        assert!(!book.principals.contains_key("p0"));

        // Everyone seen at the same moment: a tenth goes, not all of them.
        let mut book = BehaviourBook::default();
        for i in 0..(MAX_PRINCIPALS + 1) {
            book.observe(&format!("p{i}"), at(0), "X", None, None);
        }
        assert_eq!(book.len(), MAX_PRINCIPALS - MAX_PRINCIPALS / 10 + 1);
    }
}
