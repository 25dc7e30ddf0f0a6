//! The signal board: each tenant's principals and agents with signals that have not expired,
//! read without locks by the event path and the decision API (the whole map is swapped when
//! signals arrive or are read again from Postgres).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use portcullis_engine::signals::ActiveSignal;
use portcullis_engine::TenantId;

/// A signal as the board holds it: whose it is, and what policy is told.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSignal {
    pub tenant: TenantId,
    /// `principal` or `agent`.
    pub subject_kind: String,
    pub subject: String,
    pub signal: ActiveSignal,
}

#[derive(Default)]
struct Subjects {
    principals: HashMap<String, Arc<[ActiveSignal]>>,
    agents: HashMap<String, Arc<[ActiveSignal]>>,
}

pub struct SignalBoard {
    tenants: ArcSwap<HashMap<TenantId, Subjects>>,
    /// Handed out for everyone without signals: a clone, not an allocation per event.
    none: Arc<[ActiveSignal]>,
}

impl Default for SignalBoard {
    fn default() -> Self {
        Self {
            tenants: ArcSwap::default(),
            none: Arc::from([]),
        }
    }
}

impl SignalBoard {
    pub fn new() -> Self {
        Self::default()
    }

    /// No signals (shared).
    pub fn none(&self) -> Arc<[ActiveSignal]> {
        self.none.clone()
    }

    /// Replaces every signal with `signals` (those that last, as read from Postgres).
    pub fn replace(&self, signals: Vec<StoredSignal>) {
        let mut next: HashMap<TenantId, HashMap<(String, String), Vec<ActiveSignal>>> =
            HashMap::new();
        for s in signals {
            next.entry(s.tenant)
                .or_default()
                .entry((s.subject_kind, s.subject))
                .or_default()
                .push(s.signal);
        }
        let built = next
            .into_iter()
            .map(|(tenant, subjects)| {
                let mut out = Subjects::default();
                for ((kind, subject), mut list) in subjects {
                    // Worst first: what policy most needs to see.
                    list.sort_by_key(|s| std::cmp::Reverse(s.severity));
                    let map = if kind == "agent" {
                        &mut out.agents
                    } else {
                        &mut out.principals
                    };
                    map.insert(subject, list.into());
                }
                (tenant, out)
            })
            .collect();
        self.tenants.store(Arc::new(built));
    }

    /// The signals about `subject` (a `principal` or an `agent`) of `tenant` that last at
    /// `now`, worst first; empty for nearly everyone, without allocating.
    pub fn active(
        &self,
        tenant: &TenantId,
        subject_kind: &str,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Arc<[ActiveSignal]> {
        let tenants = self.tenants.load();
        let found = tenants.get(tenant).and_then(|t| {
            if subject_kind == "agent" {
                t.agents.get(subject)
            } else {
                t.principals.get(subject)
            }
        });
        match found {
            None => self.none.clone(),
            Some(list) if list.iter().all(|s| s.expires_at > now) => list.clone(),
            Some(list) => list
                .iter()
                .filter(|s| s.expires_at > now)
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use portcullis_engine::signals::Severity;

    use super::*;

    #[test]
    fn signals_are_found_by_tenant_kind_and_subject_while_they_last() {
        let now = Utc::now();
        let acme = TenantId::parse("acme").unwrap();
        let s = |kind: &str, subject: &str, severity, mins| StoredSignal {
            tenant: acme.clone(),
            subject_kind: kind.into(),
            subject: subject.into(),
            signal: ActiveSignal {
                kind: "k".into(),
                severity,
                source: "s".into(),
                expires_at: now + Duration::minutes(mins),
            },
        };
        let board = SignalBoard::new();
        board.replace(vec![
            s("principal", "alice", Severity::Low, 5),
            s("principal", "alice", Severity::High, 5),
            s("principal", "alice", Severity::Critical, -1),
            s("agent", "alice", Severity::Medium, 5),
        ]);
        let alice = board.active(&acme, "principal", "alice", now);
        let severities: Vec<_> = alice.iter().map(|s| s.severity).collect();
        assert_eq!(
            severities,
            [Severity::High, Severity::Low],
            "worst first, expired gone"
        );
        assert_eq!(board.active(&acme, "agent", "alice", now).len(), 1);
        assert!(board.active(&acme, "principal", "bob", now).is_empty());
        let globex = TenantId::parse("globex").unwrap();
        assert!(board.active(&globex, "principal", "alice", now).is_empty());
    }
}
