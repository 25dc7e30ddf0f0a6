//! What made an anomalous event unusual: the features that isolated it soonest in the forest's
//! trees, each with its value and, for a categorical one, how common that value was in training.

use serde::{Deserialize, Serialize};

/// A feature's value as the event had it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FeatureValue {
    Text(String),
    Number(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnusualFeature {
    /// The feature's name in its scope's schema (docs/anomaly-models.md, "Features").
    pub feature: String,
    pub value: FeatureValue,
    /// Its share of the isolation, from 0 to 1 (the shares of all features sum to 1).
    pub weight: f64,
    /// For a categorical feature, the share of training events that had this value (0: never
    /// seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_share: Option<f64>,
}

/// At most this many features are named per anomaly.
pub const MAX_UNUSUAL_FEATURES: usize = 3;

/// A feature with less of the isolation than this is not named (the first one always is).
pub const MIN_UNUSUAL_WEIGHT: f64 = 0.15;
