//! The signal board: each tenant's principals, agents and units with signals that have not
//! expired, read without locks by the event path and the decision API (the whole map is swapped
//! when signals arrive or are read again from Postgres). Signals about a unit are handed to the
//! protection board as the levels they hold it at.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use portcullis_engine::signals::ActiveSignal;
use portcullis_engine::TenantId;

use crate::protection::{Hold, ProtectionBoard};

/// A signal as the board holds it: whose it is, and what policy is told.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSignal {
    pub tenant: TenantId,
    /// `principal`, `agent` or `unit`.
    pub subject_kind: String,
    pub subject: String,
    pub signal: ActiveSignal,
}

#[derive(Default)]
struct Subjects {
    principals: HashMap<String, Arc<[ActiveSignal]>>,
    agents: HashMap<String, Arc<[ActiveSignal]>>,
    units: HashMap<String, Arc<[ActiveSignal]>>,
}

pub struct SignalBoard {
    tenants: ArcSwap<HashMap<TenantId, Subjects>>,
    /// Handed out for everyone without signals: a clone, not an allocation per event.
    none: Arc<[ActiveSignal]>,
    /// Told the levels signals about units hold them at.
    protection: Option<Arc<ProtectionBoard>>,
}

impl Default for SignalBoard {
    fn default() -> Self {
        Self {
            tenants: ArcSwap::default(),
            none: Arc::from([]),
            protection: None,
        }
    }
}

impl SignalBoard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Signals about a unit hold its level up on `board` while they last.
    pub fn holding(mut self, board: Arc<ProtectionBoard>) -> Self {
        self.protection = Some(board);
        self
    }

    /// No signals (shared).
    pub fn none(&self) -> Arc<[ActiveSignal]> {
        self.none.clone()
    }

    /// Replaces every signal with `signals` (those that last, as read from Postgres).
    pub fn replace(&self, signals: Vec<StoredSignal>) {
        let mut next: HashMap<TenantId, HashMap<(String, String), Vec<ActiveSignal>>> =
            HashMap::new();
        let mut holds = Vec::new();
        for s in signals {
            if s.subject_kind == "unit" {
                if let Some(level) = s.signal.severity.protection_floor() {
                    holds.push(Hold {
                        tenant: s.tenant.clone(),
                        unit: s.subject.clone(),
                        level,
                        until: s.signal.expires_at,
                    });
                }
            }
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
                    let map = match kind.as_str() {
                        "agent" => &mut out.agents,
                        "unit" => &mut out.units,
                        _ => &mut out.principals,
                    };
                    map.insert(subject, list.into());
                }
                (tenant, out)
            })
            .collect();
        self.tenants.store(Arc::new(built));
        if let Some(board) = &self.protection {
            board.hold(holds);
        }
    }

    /// `about` (the signals about a decision's principal or agent) with those about its
    /// protection unit `unit`, worst first; `about` itself when the unit has none.
    pub fn with_unit(
        &self,
        about: Arc<[ActiveSignal]>,
        tenant: &TenantId,
        unit: Option<&str>,
        now: DateTime<Utc>,
    ) -> Arc<[ActiveSignal]> {
        let Some(unit) = unit else {
            return about;
        };
        let of_unit = self.active(tenant, "unit", unit, now);
        if of_unit.is_empty() {
            return about;
        }
        if about.is_empty() {
            return of_unit;
        }
        let mut all: Vec<ActiveSignal> = about.iter().chain(of_unit.iter()).cloned().collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.severity));
        all.into()
    }

    /// The signals about `subject` (a `principal`, an `agent` or a `unit`) of `tenant` that last at
    /// `now`, worst first; empty for nearly everyone, without allocating.
    pub fn active(
        &self,
        tenant: &TenantId,
        subject_kind: &str,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Arc<[ActiveSignal]> {
        let tenants = self.tenants.load();
        let found = tenants.get(tenant).and_then(|t| match subject_kind {
            "agent" => t.agents.get(subject),
            "unit" => t.units.get(subject),
            _ => t.principals.get(subject),
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
                about: "principal",
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

    #[test]
    fn signals_about_a_unit_hold_its_protection_up() {
        use portcullis_engine::protection::{ProtectionLevel, ProtectionParams, Selector};

        use crate::protection::UnitConfig;

        let now = Utc::now();
        let acme = TenantId::parse("acme").unwrap();
        let protection = Arc::new(ProtectionBoard::new(ProtectionParams::default()));
        protection.configure(vec![UnitConfig {
            tenant: acme.clone(),
            name: "iam".into(),
            selector: Selector::parse("cloudtrail:iam.amazonaws.com").unwrap(),
            capacity_per_sec: 100.0,
        }]);
        let board = SignalBoard::new().holding(protection.clone());
        let about_iam = |severity| StoredSignal {
            tenant: acme.clone(),
            subject_kind: "unit".into(),
            subject: "iam".into(),
            signal: ActiveSignal {
                about: "unit",
                kind: "under_attack".into(),
                severity,
                source: "waf".into(),
                expires_at: now + Duration::minutes(5),
            },
        };
        let level = || {
            protection
                .peek(&acme, "cloudtrail:iam.amazonaws.com")
                .unwrap()
                .level
        };
        board.replace(vec![about_iam(Severity::Medium)]);
        assert_eq!(
            level(),
            ProtectionLevel::Permissive,
            "medium: told, not held"
        );
        assert_eq!(board.active(&acme, "unit", "iam", now).len(), 1);
        board.replace(vec![
            about_iam(Severity::Medium),
            about_iam(Severity::Critical),
        ]);
        assert_eq!(level(), ProtectionLevel::ReadOnly);
        board.replace(vec![]);
        assert_eq!(
            level(),
            ProtectionLevel::Permissive,
            "released when it is gone"
        );
    }
}
