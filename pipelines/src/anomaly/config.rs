//! `[anomaly]`: whether events are scored by their tenant's anomaly models (and collected by
//! training sessions) before policy judges them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Off: no features, no scores, no training rows; policies see `anomaly_score` 0.
    pub enabled: bool,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}
