//! One subject's distrust (its risk, from 0 to 1) as of an event time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::anomaly::AnomalySettings;

/// The trust of a subject with no recent anomalies.
pub const FULL_TRUST: u8 = 100;

/// The share of an anomaly at the threshold.
const WEIGHT_AT_THRESHOLD: f64 = 0.3;

/// The share of the remaining trust an event scored `score` takes: nothing below `threshold`,
/// 30 % at it, rising linearly to all of it at 1.
pub fn anomaly_weight(score: f64, threshold: f64) -> f64 {
    if score.is_nan() || score < threshold {
        return 0.0;
    }
    let over = ((score - threshold) / (1.0 - threshold)).clamp(0.0, 1.0);
    WEIGHT_AT_THRESHOLD + (1.0 - WEIGHT_AT_THRESHOLD) * over
}

/// Trust from 0 to 100 for a risk from 0 to 1.
pub fn trust_of_risk(risk: f64) -> u8 {
    (100.0 * (1.0 - risk.clamp(0.0, 1.0))).round() as u8
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrustState {
    /// The share of trust lost, as of `as_of`.
    pub risk: f64,
    /// The event time of the latest event counted.
    pub as_of: DateTime<Utc>,
}

impl TrustState {
    /// The risk at `at`, decayed by the half-life since `as_of` (not at all for an earlier time:
    /// an event that arrives late neither decays nor rewinds).
    pub fn risk_at(&self, at: DateTime<Utc>, half_life_secs: u32) -> f64 {
        let elapsed = (at - self.as_of).num_milliseconds().max(0) as f64 / 1000.0;
        self.risk * (-elapsed / f64::from(half_life_secs.max(1))).exp2()
    }

    /// Trust from 0 to 100 at `at`.
    pub fn trust_at(&self, at: DateTime<Utc>, half_life_secs: u32) -> u8 {
        trust_of_risk(self.risk_at(at, half_life_secs))
    }

    /// Counts an event scored `score` at `at`.
    pub fn observe(&mut self, score: f64, at: DateTime<Utc>, settings: &AnomalySettings) {
        let risk = self.risk_at(at, settings.trust_half_life_secs);
        let weight = anomaly_weight(score, settings.threshold);
        self.risk = 1.0 - (1.0 - risk) * (1.0 - weight);
        self.as_of = self.as_of.max(at);
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
    fn weights_from_the_threshold_up() {
        assert_eq!(anomaly_weight(0.69, 0.7), 0.0);
        assert_eq!(anomaly_weight(f64::NAN, 0.7), 0.0);
        assert!((anomaly_weight(0.7, 0.7) - 0.3).abs() < 1e-12);
        assert!((anomaly_weight(0.85, 0.7) - 0.65).abs() < 1e-12);
        assert_eq!(anomaly_weight(1.0, 0.7), 1.0);
    }

    #[test]
    fn anomalies_take_trust_and_time_gives_it_back() {
        let s = AnomalySettings::default();
        let mut state = TrustState {
            risk: 0.0,
            as_of: t(0),
        };
        // Ordinary events take nothing, however many.
        for i in 0..1000 {
            state.observe(0.55, t(i), &s);
        }
        assert_eq!(state.trust_at(t(1000), 3600), 100);
        // Two anomalies at the threshold: 70 % of 70 % is left.
        state.observe(0.7, t(1000), &s);
        state.observe(0.7, t(1000), &s);
        assert_eq!(state.trust_at(t(1000), 3600), 49);
        // An hour later half the loss is back, two hours three quarters.
        assert_eq!(state.trust_at(t(4600), 3600), 75);
        assert_eq!(state.trust_at(t(8200), 3600), 87);
        // A late event neither decays nor rewinds.
        state.observe(0.1, t(10), &s);
        assert_eq!(state.as_of, t(1000));
        assert_eq!(state.trust_at(t(1000), 3600), 49);
    }
}
