//! A model line's settings: the score from which an event is an anomaly, and how fast lost trust
//! comes back.

use serde::{Deserialize, Serialize};

use super::ModelError;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnomalySettings {
    /// Events scored at least this are anomalies: they get an `anomalies` row and lower their
    /// subject's trust. About 0.5 is usual for an Isolation Forest; the training summary's
    /// `score_p99` says how high the training events themselves went.
    pub threshold: f64,
    /// Trust lost to anomalies comes back by half in this many seconds of event time.
    pub trust_half_life_secs: u32,
}

impl AnomalySettings {
    pub const DEFAULT_THRESHOLD: f64 = 0.7;
    pub const DEFAULT_TRUST_HALF_LIFE_SECS: u32 = 3600;
    /// A half-life from a minute to thirty days.
    pub const HALF_LIFE_RANGE: std::ops::RangeInclusive<u32> = 60..=30 * 86_400;

    pub fn new(threshold: f64, trust_half_life_secs: u32) -> Result<Self, ModelError> {
        if threshold.is_nan() || threshold <= 0.5 || threshold >= 1.0 {
            return Err(ModelError::InvalidParameters(format!(
                "the anomaly threshold must be above 0.5 (a usual score) and below 1, got {threshold}"
            )));
        }
        if !Self::HALF_LIFE_RANGE.contains(&trust_half_life_secs) {
            return Err(ModelError::InvalidParameters(format!(
                "the trust half-life must be from {} to {} seconds, got {trust_half_life_secs}",
                Self::HALF_LIFE_RANGE.start(),
                Self::HALF_LIFE_RANGE.end()
            )));
        }
        Ok(Self {
            threshold,
            trust_half_life_secs,
        })
    }
}

impl Default for AnomalySettings {
    fn default() -> Self {
        Self {
            threshold: Self::DEFAULT_THRESHOLD,
            trust_half_life_secs: Self::DEFAULT_TRUST_HALF_LIFE_SECS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_in_range_only() {
        assert!(AnomalySettings::new(0.7, 3600).is_ok());
        for (t, h) in [
            (0.5, 3600),
            (1.0, 3600),
            (f64::NAN, 3600),
            (0.7, 59),
            (0.7, u32::MAX),
        ] {
            assert!(AnomalySettings::new(t, h).is_err(), "{t} {h}");
        }
        let d = AnomalySettings::default();
        assert_eq!(
            AnomalySettings::new(d.threshold, d.trust_half_life_secs),
            Ok(d)
        );
    }
}
