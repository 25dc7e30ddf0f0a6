//! One unit's smoothed load and the protection level it calls for.

use serde::{Deserialize, Serialize};

use super::ProtectionLevel;

/// The thresholds and smoothing (seed 002's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProtectionParams {
    /// Weight of a new observation in the moving averages, in (0, 1].
    pub alpha: f64,
    /// ρ from which writes need approval.
    pub approval_at: f64,
    /// ρ from which the unit is read-only.
    pub read_only_at: f64,
    /// ρ below which protection relaxes one step per observation.
    pub relax_below: f64,
}

impl Default for ProtectionParams {
    fn default() -> Self {
        Self {
            alpha: 0.3,
            approval_at: 0.6,
            read_only_at: 0.9,
            relax_below: 0.5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ProtectionParamsError(String);

impl ProtectionParams {
    /// Checked: 0 < α ≤ 1 and 0 < relax_below < approval_at < read_only_at.
    pub fn new(
        alpha: f64,
        approval_at: f64,
        read_only_at: f64,
        relax_below: f64,
    ) -> Result<Self, ProtectionParamsError> {
        if !(alpha > 0.0 && alpha <= 1.0) {
            return Err(ProtectionParamsError(format!(
                "alpha must be in (0, 1], got {alpha}"
            )));
        }
        if !(relax_below > 0.0 && relax_below < approval_at && approval_at < read_only_at) {
            return Err(ProtectionParamsError(format!(
                "thresholds must rise: 0 < relax_below ({relax_below}) < approval_at ({approval_at}) < read_only_at ({read_only_at})"
            )));
        }
        Ok(Self {
            alpha,
            approval_at,
            read_only_at,
            relax_below,
        })
    }

    /// The level ρ alone calls for.
    pub fn level_for(&self, rho: f64) -> ProtectionLevel {
        if rho >= self.read_only_at {
            ProtectionLevel::ReadOnly
        } else if rho >= self.approval_at {
            ProtectionLevel::RequireApproval
        } else {
            ProtectionLevel::Permissive
        }
    }
}

/// A change of level, with the load that made it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Transition {
    pub from: ProtectionLevel,
    pub to: ProtectionLevel,
    pub lambda: f64,
    pub mu: f64,
    pub rho: f64,
}

/// A unit's smoothed arrival and service rates and its level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitLoad {
    params: ProtectionParams,
    /// `None` before the first observation.
    lambda: Option<f64>,
    mu: Option<f64>,
    level: ProtectionLevel,
}

impl UnitLoad {
    pub fn new(params: ProtectionParams) -> Self {
        Self {
            params,
            lambda: None,
            mu: None,
            level: ProtectionLevel::Permissive,
        }
    }

    pub fn level(&self) -> ProtectionLevel {
        self.level
    }

    pub fn lambda(&self) -> f64 {
        self.lambda.unwrap_or(0.0)
    }

    pub fn mu(&self) -> f64 {
        self.mu.unwrap_or(0.0)
    }

    /// λ/μ; infinite when work arrives and nothing serves it, 0 when nothing arrives.
    pub fn rho(&self) -> f64 {
        match (self.lambda(), self.mu()) {
            (l, _) if l <= 0.0 => 0.0,
            (_, m) if m <= 0.0 => f64::INFINITY,
            (l, m) => l / m,
        }
    }

    /// Takes one observation of the arrival and service rates (per the same time unit;
    /// negative or non-finite values count as 0). The first observation sets the averages;
    /// later ones move them by α. Returns the change of level, if any: up at once to the
    /// level ρ calls for, down one step only when ρ is below `relax_below`.
    pub fn observe(&mut self, arrival_rate: f64, service_rate: f64) -> Option<Transition> {
        let clean = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
        let a = self.params.alpha;
        let smooth =
            |old: Option<f64>, new: f64| Some(old.map_or(new, |o| a * new + (1.0 - a) * o));
        self.lambda = smooth(self.lambda, clean(arrival_rate));
        self.mu = smooth(self.mu, clean(service_rate));
        let rho = self.rho();
        let called_for = self.params.level_for(rho);
        let next = if called_for > self.level {
            called_for
        } else if rho < self.params.relax_below {
            self.level.relaxed()
        } else {
            self.level
        };
        if next == self.level {
            return None;
        }
        let change = Transition {
            from: self.level,
            to: next,
            lambda: self.lambda(),
            mu: self.mu(),
            rho,
        };
        self.level = next;
        Some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtectionLevel::*;

    fn unit() -> UnitLoad {
        UnitLoad::new(ProtectionParams::default())
    }

    /// Seed 002's first scenario: low load (ρ = 0.3) stays permissive.
    #[test]
    fn low_load_is_permissive() {
        let mut u = unit();
        for _ in 0..10 {
            assert_eq!(u.observe(30.0, 100.0), None);
        }
        assert_eq!(u.level(), Permissive);
        assert!((u.rho() - 0.3).abs() < 1e-9);
    }

    /// Seed 002's example: 70 requests an hour against a capacity of 100 needs approval.
    #[test]
    fn seventy_of_a_hundred_requires_approval() {
        let mut u = unit();
        let t = u.observe(70.0, 100.0).expect("a transition");
        assert_eq!((t.from, t.to), (Permissive, RequireApproval));
        assert!((t.rho - 0.7).abs() < 1e-9);
    }

    /// Load rising through both thresholds: approval from 0.6, read-only from 0.9, each
    /// reached as the smoothed ρ crosses it.
    #[test]
    fn rising_load_passes_both_thresholds_in_order() {
        let mut u = unit();
        u.observe(30.0, 100.0);
        let mut seen = Vec::new();
        for _ in 0..20 {
            if let Some(t) = u.observe(120.0, 100.0) {
                seen.push((t.to, t.rho));
            }
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].0, RequireApproval);
        assert!(seen[0].1 >= 0.6 && seen[0].1 < 0.9, "{seen:?}");
        assert_eq!(seen[1].0, ReadOnly);
        assert!(seen[1].1 >= 0.9, "{seen:?}");
    }

    /// A single spike is smoothed away: ρ observed at 0.8 once, after a steady 0.3, moves the
    /// average to 0.45, and the unit stays permissive (it would need approval unsmoothed).
    #[test]
    fn a_spike_is_smoothed_away() {
        let mut u = unit();
        for _ in 0..5 {
            u.observe(30.0, 100.0);
        }
        assert_eq!(u.observe(80.0, 100.0), None);
        assert!((u.rho() - 0.45).abs() < 1e-9);
        assert_eq!(u.level(), Permissive);
    }

    /// Load falling: read-only relaxes to approval and then to permissive, one step per
    /// observation below 0.5, and not at all while ρ is between 0.5 and the thresholds.
    #[test]
    fn falling_load_relaxes_one_step_at_a_time_with_hysteresis() {
        let mut u = unit();
        u.observe(95.0, 100.0);
        assert_eq!(u.level(), ReadOnly);
        // Just under the approval threshold but above 0.5: no relaxing.
        let mut held = unit();
        held.observe(95.0, 100.0);
        for _ in 0..30 {
            assert_eq!(held.observe(55.0, 100.0), None);
        }
        assert_eq!(held.level(), ReadOnly);
        // Well below: one step each time ρ is under 0.5.
        let mut steps = Vec::new();
        for _ in 0..30 {
            if let Some(t) = u.observe(10.0, 100.0) {
                assert!(t.rho < 0.5);
                steps.push((t.from, t.to));
            }
        }
        assert_eq!(
            steps,
            vec![(ReadOnly, RequireApproval), (RequireApproval, Permissive)]
        );
    }

    #[test]
    fn no_service_is_read_only_and_no_arrivals_relax() {
        let mut u = unit();
        assert_eq!(u.observe(5.0, 0.0).map(|t| t.to), Some(ReadOnly));
        assert_eq!(u.rho(), f64::INFINITY);
        let mut quiet = unit();
        assert_eq!(quiet.observe(0.0, 0.0), None);
        assert_eq!(quiet.rho(), 0.0);
        assert_eq!(quiet.observe(f64::NAN, -3.0), None);
    }

    #[test]
    fn parameters_are_checked() {
        assert!(ProtectionParams::new(0.3, 0.6, 0.9, 0.5).is_ok());
        assert!(ProtectionParams::new(0.0, 0.6, 0.9, 0.5).is_err());
        assert!(ProtectionParams::new(1.5, 0.6, 0.9, 0.5).is_err());
        assert!(ProtectionParams::new(0.3, 0.9, 0.6, 0.5).is_err());
        assert!(ProtectionParams::new(0.3, 0.6, 0.9, 0.7).is_err());
        assert!(ProtectionParams::new(f64::NAN, 0.6, 0.9, 0.5).is_err());
    }
}
