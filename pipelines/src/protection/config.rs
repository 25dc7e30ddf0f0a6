//! `[protection]`: protection levels from each unit's load (docs/protection.md).

use portcullis_engine::protection::{ProtectionParams, ProtectionParamsError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtectionConfig {
    /// Off: no unit's load is measured and policy always sees `permissive`.
    pub enabled: bool,
    /// How often each unit's arrival rate is observed.
    pub tick_ms: u64,
    /// Weight of a new observation in the moving averages of λ and μ, in (0, 1].
    pub alpha: f64,
    /// ρ from which writes need approval, from which the unit is read-only, and below which
    /// protection relaxes one step per tick.
    pub approval_at: f64,
    pub read_only_at: f64,
    pub relax_below: f64,
    /// How often units are read again from Postgres (changes made elsewhere).
    pub refresh_ms: u64,
    /// How often each unit's load is recorded for the chart, and for how long it is kept.
    pub sample_secs: u64,
    pub keep_samples_hours: u64,
}

impl Default for ProtectionConfig {
    fn default() -> Self {
        let p = ProtectionParams::default();
        Self {
            enabled: true,
            tick_ms: 1000,
            alpha: p.alpha,
            approval_at: p.approval_at,
            read_only_at: p.read_only_at,
            relax_below: p.relax_below,
            refresh_ms: 5000,
            sample_secs: 10,
            keep_samples_hours: 48,
        }
    }
}

impl ProtectionConfig {
    pub fn params(&self) -> Result<ProtectionParams, ProtectionParamsError> {
        ProtectionParams::new(
            self.alpha,
            self.approval_at,
            self.read_only_at,
            self.relax_below,
        )
    }

    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Err(e) = self.params() {
            p.push(format!("protection: {e}"));
        }
        if self.tick_ms < 50 || self.refresh_ms < 100 {
            p.push("protection.tick_ms must be at least 50 and refresh_ms at least 100".into());
        }
        if self.sample_secs == 0 || !(1..=24 * 366).contains(&self.keep_samples_hours) {
            p.push(
                "protection.sample_secs must be at least 1 and keep_samples_hours from 1 to 8784 (a year)"
                    .into(),
            );
        }
        p
    }
}
