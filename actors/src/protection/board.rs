//! The protection board: each tenant's configured units, the arrivals counted since the last
//! tick, and the level each unit stands at. Decision paths count an arrival and read the level
//! in one call, without locks (the unit set is swapped whole when the configuration changes);
//! a ticker observes the rates once a tick and moves the levels (seed 002's model,
//! `portcullis_engine::protection::UnitLoad`). Signals about a unit hold its level up while
//! they last ([`Hold`]): decisions see the higher of the two.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use portcullis_engine::protection::{
    ProtectionLevel, ProtectionParams, Selector, Transition, UnitLoad, UnitProtection,
};
use portcullis_engine::TenantId;

/// One configured unit, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitConfig {
    pub tenant: TenantId,
    pub name: String,
    pub selector: Selector,
    /// μ: what the unit can serve, per second (for the `approvals` unit, the approvers' rate).
    pub capacity_per_sec: f64,
}

/// A unit's state after a tick.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitObserved {
    pub tenant: TenantId,
    pub unit: Arc<str>,
    pub lambda: f64,
    pub mu: f64,
    pub rho: f64,
    pub level: ProtectionLevel,
    /// The change of level this tick made, if any.
    pub transition: Option<Transition>,
}

/// A level a signal about a unit holds it at, at least, until the signal ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub tenant: TenantId,
    pub unit: String,
    pub level: ProtectionLevel,
    pub until: DateTime<Utc>,
}

/// Per tenant, per unit name: the levels held, each until when.
type Holds = HashMap<TenantId, HashMap<String, Vec<(ProtectionLevel, DateTime<Utc>)>>>;

struct Unit {
    config: UnitConfig,
    name: Arc<str>,
    arrivals: AtomicU64,
    level: AtomicU8,
    rho_bits: AtomicU64,
    load: Mutex<UnitLoad>,
}

impl Unit {
    fn new(config: UnitConfig, load: UnitLoad) -> Self {
        Self {
            name: config.name.as_str().into(),
            level: AtomicU8::new(encode(load.level())),
            rho_bits: AtomicU64::new(load.rho().to_bits()),
            arrivals: AtomicU64::new(0),
            load: Mutex::new(load),
            config,
        }
    }

    fn observed(&self, load: &UnitLoad, transition: Option<Transition>) -> UnitObserved {
        UnitObserved {
            tenant: self.config.tenant.clone(),
            unit: self.name.clone(),
            lambda: load.lambda(),
            mu: load.mu(),
            rho: load.rho(),
            level: load.level(),
            transition,
        }
    }

    fn protection(&self) -> UnitProtection {
        UnitProtection {
            unit: self.name.clone(),
            level: decode(self.level.load(Ordering::Relaxed)),
            rho: f64::from_bits(self.rho_bits.load(Ordering::Relaxed)),
        }
    }
}

fn encode(level: ProtectionLevel) -> u8 {
    match level {
        ProtectionLevel::Permissive => 0,
        ProtectionLevel::RequireApproval => 1,
        ProtectionLevel::ReadOnly => 2,
    }
}

fn decode(level: u8) -> ProtectionLevel {
    match level {
        0 => ProtectionLevel::Permissive,
        1 => ProtectionLevel::RequireApproval,
        _ => ProtectionLevel::ReadOnly,
    }
}

type Units = HashMap<TenantId, Vec<Arc<Unit>>>;

pub struct ProtectionBoard {
    params: ProtectionParams,
    units: ArcSwap<Units>,
    holds: ArcSwap<Holds>,
}

impl ProtectionBoard {
    pub fn new(params: ProtectionParams) -> Self {
        Self {
            params,
            units: ArcSwap::from_pointee(HashMap::new()),
            holds: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// Replaces the configured units. A unit kept (same tenant and name) keeps its averages,
    /// level and the arrivals counted since the last tick; a changed selector or capacity
    /// applies from the next tick.
    pub fn configure(&self, configs: Vec<UnitConfig>) {
        let old = self.units.load();
        let mut next: Units = HashMap::new();
        for config in configs {
            let before = old
                .get(&config.tenant)
                .and_then(|units| units.iter().find(|u| u.config.name == config.name));
            let unit = match before {
                Some(unit) if unit.config == config => unit.clone(),
                Some(unit) => {
                    let load = unit.load.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let changed = Unit::new(config, load);
                    changed
                        .arrivals
                        .store(unit.arrivals.swap(0, Ordering::Relaxed), Ordering::Relaxed);
                    Arc::new(changed)
                }
                None => Arc::new(Unit::new(config, UnitLoad::new(self.params))),
            };
            next.entry(unit.config.tenant.clone())
                .or_default()
                .push(unit);
        }
        // Units are tried in name order: the first whose selector matches takes the decision.
        for units in next.values_mut() {
            units.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        }
        self.units.store(Arc::new(next));
    }

    /// Counts one arrival of a decision with unit key `key` for `tenant`, and gives its
    /// unit's protection; `None` when no configured unit covers it.
    pub fn arrive(&self, tenant: &TenantId, key: &str) -> Option<UnitProtection> {
        let units = self.units.load();
        let unit = units
            .get(tenant)?
            .iter()
            .find(|u| u.config.selector.matches(key))?;
        unit.arrivals.fetch_add(1, Ordering::Relaxed);
        Some(self.held_up(tenant, unit.protection()))
    }

    /// Replaces the levels signals hold units at (those whose signals last, as read again).
    pub fn hold(&self, holds: Vec<Hold>) {
        let mut next: Holds = HashMap::new();
        for h in holds {
            next.entry(h.tenant)
                .or_default()
                .entry(h.unit)
                .or_default()
                .push((h.level, h.until));
        }
        self.holds.store(Arc::new(next));
    }

    /// The level signals hold `unit` of `tenant` at, at least, at `now`.
    pub fn held(
        &self,
        tenant: &TenantId,
        unit: &str,
        now: DateTime<Utc>,
    ) -> Option<ProtectionLevel> {
        let holds = self.holds.load();
        holds
            .get(tenant)?
            .get(unit)?
            .iter()
            .filter(|(_, until)| *until > now)
            .map(|(level, _)| *level)
            .max()
    }

    /// `p` raised to the level signals hold its unit at, if higher. The clock is read only
    /// for a unit with holds.
    fn held_up(&self, tenant: &TenantId, mut p: UnitProtection) -> UnitProtection {
        let holds = self.holds.load();
        let Some(list) = holds.get(tenant).and_then(|units| units.get(&*p.unit)) else {
            return p;
        };
        let now = Utc::now();
        let held = list
            .iter()
            .filter(|(_, until)| *until > now)
            .map(|(level, _)| *level)
            .max();
        if let Some(level) = held {
            p.level = p.level.max(level);
        }
        p
    }

    /// Forgets the arrivals counted so far: the ticker's first tick then measures a tick's worth.
    pub fn reset_arrivals(&self) {
        for unit in self.units.load().values().flatten() {
            unit.arrivals.store(0, Ordering::Relaxed);
        }
    }

    /// The protection `key` would get, without counting an arrival.
    pub fn peek(&self, tenant: &TenantId, key: &str) -> Option<UnitProtection> {
        let units = self.units.load();
        units
            .get(tenant)?
            .iter()
            .find(|u| u.config.selector.matches(key))
            .map(|u| self.held_up(tenant, u.protection()))
    }

    /// Every unit as it stands (no transitions).
    pub fn state(&self) -> Vec<UnitObserved> {
        let units = self.units.load();
        units
            .values()
            .flatten()
            .map(|unit| {
                let load = unit.load.lock().unwrap_or_else(|e| e.into_inner());
                unit.observed(&load, None)
            })
            .collect()
    }

    /// Observes every unit once: its arrivals over the `elapsed_secs` since the last tick
    /// against its capacity.
    pub fn tick(&self, elapsed_secs: f64) -> Vec<UnitObserved> {
        let units = self.units.load();
        let mut out = Vec::new();
        for unit in units.values().flatten() {
            let arrived = unit.arrivals.swap(0, Ordering::Relaxed) as f64;
            let rate = if elapsed_secs > 0.0 {
                arrived / elapsed_secs
            } else {
                0.0
            };
            let mut load = unit.load.lock().unwrap_or_else(|e| e.into_inner());
            let transition = load.observe(rate, unit.config.capacity_per_sec);
            unit.level.store(encode(load.level()), Ordering::Relaxed);
            unit.rho_bits.store(load.rho().to_bits(), Ordering::Relaxed);
            out.push(unit.observed(&load, transition));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtectionLevel::*;

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn unit(name: &str, selector: &str, capacity: f64) -> UnitConfig {
        UnitConfig {
            tenant: acme(),
            name: name.into(),
            selector: Selector::parse(selector).unwrap(),
            capacity_per_sec: capacity,
        }
    }

    #[test]
    fn a_hold_raises_its_unit_while_it_lasts_and_never_lowers_it() {
        let board = ProtectionBoard::new(ProtectionParams::default());
        board.configure(vec![
            unit("iam", "cloudtrail:iam.amazonaws.com", 10.0),
            unit("s3", "cloudtrail:s3.amazonaws.com", 10.0),
        ]);
        let iam = "cloudtrail:iam.amazonaws.com";
        let now = Utc::now();
        let hold = |unit: &str, level, secs| Hold {
            tenant: acme(),
            unit: unit.into(),
            level,
            until: now + chrono::Duration::seconds(secs),
        };
        board.hold(vec![
            hold("iam", RequireApproval, 60),
            hold("iam", ReadOnly, -1),
            hold("s3", ReadOnly, 60),
        ]);
        assert_eq!(
            board.arrive(&acme(), iam).unwrap().level,
            RequireApproval,
            "the ended one is gone"
        );
        assert_eq!(board.held(&acme(), "iam", now), Some(RequireApproval));
        assert_eq!(
            board.held(&TenantId::parse("globex").unwrap(), "iam", now),
            None,
            "another tenant's unit of that name"
        );
        // Load above the hold wins; the hold does not lower it.
        for _ in 0..20 {
            board.arrive(&acme(), "cloudtrail:s3.amazonaws.com");
        }
        board.tick(1.0);
        board.hold(vec![hold("s3", RequireApproval, 60)]);
        assert_eq!(
            board
                .peek(&acme(), "cloudtrail:s3.amazonaws.com")
                .unwrap()
                .level,
            ReadOnly
        );
        assert_eq!(
            board.peek(&acme(), iam).unwrap().level,
            Permissive,
            "released"
        );
    }

    #[test]
    fn arrivals_raise_the_level_of_their_unit_only_and_it_relaxes_after() {
        let board = ProtectionBoard::new(ProtectionParams::default());
        board.configure(vec![
            unit("iam", "cloudtrail:iam.amazonaws.com", 10.0),
            unit("rest", "cloudtrail:*", 1000.0),
        ]);
        assert_eq!(board.arrive(&acme(), "device:agent"), None);
        assert_eq!(
            board.arrive(&TenantId::parse("globex").unwrap(), "cloudtrail:x"),
            None
        );
        for _ in 0..20 {
            board.arrive(&acme(), "cloudtrail:iam.amazonaws.com");
        }
        board.arrive(&acme(), "cloudtrail:s3.amazonaws.com");
        let seen = board.tick(1.0);
        let iam = seen.iter().find(|u| &*u.unit == "iam").unwrap();
        assert_eq!(iam.level, ReadOnly, "rho 2: read-only at once");
        assert_eq!(iam.transition.as_ref().map(|t| t.to), Some(ReadOnly));
        let rest = seen.iter().find(|u| &*u.unit == "rest").unwrap();
        assert_eq!((rest.level, rest.transition.is_none()), (Permissive, true));
        let p = board.peek(&acme(), "cloudtrail:iam.amazonaws.com").unwrap();
        assert_eq!((p.level, &*p.unit), (ReadOnly, "iam"));
        assert!((p.rho - 2.0).abs() < 1e-9);

        // Reconfiguring keeps a unit's state and its arrivals since the last tick.
        board.arrive(&acme(), "cloudtrail:iam.amazonaws.com");
        board.configure(vec![unit("iam", "cloudtrail:iam.amazonaws.com", 10.0)]);
        board.configure(vec![unit("iam", "cloudtrail:iam.amazonaws.com", 12.0)]);
        let seen = board.tick(1.0);
        assert!(
            (seen[0].lambda - (0.3 * 1.0 + 0.7 * 20.0)).abs() < 1e-9,
            "{seen:?}"
        );
        assert!(
            (seen[0].mu - (0.3 * 12.0 + 0.7 * 10.0)).abs() < 1e-9,
            "{seen:?}"
        );
        // Quiet ticks relax it one step at a time.
        let mut levels = Vec::new();
        for _ in 0..14 {
            levels.extend(
                board
                    .tick(1.0)
                    .into_iter()
                    .filter_map(|u| u.transition.map(|t| t.to)),
            );
        }
        assert_eq!(levels, [RequireApproval, Permissive]);
        assert_eq!(
            board.peek(&acme(), "cloudtrail:s3.amazonaws.com"),
            None,
            "rest removed"
        );
    }
}
