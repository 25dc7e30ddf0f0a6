//! A trained anomaly model: how it encodes an event's features, and the forest that scores them.

use serde::{Deserialize, Serialize};

use super::features::{schema, FeatureKind, FrequencyEncoder, RawFeatures, FEATURES_VERSION};
use super::{
    FeatureMatrix, FeatureValue, IsolationForest, ModelError, ModelScope, UnusualFeature,
    MAX_UNUSUAL_FEATURES, MIN_UNUSUAL_WEIGHT,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyModel {
    pub scope: ModelScope,
    /// The feature definitions it was trained on (`features::FEATURES_VERSION`).
    pub features_version: u32,
    pub encoder: FrequencyEncoder,
    pub forest: IsolationForest,
}

impl AnomalyModel {
    /// The anomaly score of an event's features, in (0, 1].
    pub fn score(&self, row: &RawFeatures) -> Result<f64, ModelError> {
        self.forest.score(&self.encoder.encode(row)?)
    }

    /// The scores of many events' features, in order: walked through the trees together,
    /// which is faster than one at a time (`IsolationForest::score_all`).
    pub fn score_all(&self, rows: &[RawFeatures]) -> Result<Vec<f64>, ModelError> {
        let mut matrix = FeatureMatrix::new(self.encoder.width())?;
        for row in rows {
            matrix.push(&self.encoder.encode(row)?)?;
        }
        self.forest.score_all(&matrix)
    }

    /// The features that made an event's features unusual, most telling first: those with the
    /// largest share of its isolation (`IsolationForest::attribution`).
    pub fn unusual(&self, row: &RawFeatures) -> Result<Vec<UnusualFeature>, ModelError> {
        let shares = self.forest.attribution(&self.encoder.encode(row)?)?;
        let mut order: Vec<usize> = (0..shares.len()).collect();
        order.sort_by(|&a, &b| shares[b].total_cmp(&shares[a]).then(a.cmp(&b)));
        let specs = schema(self.scope);
        let categorical = row.categorical.len();
        Ok(order
            .into_iter()
            .enumerate()
            .take_while(|&(rank, i)| rank == 0 || shares[i] >= MIN_UNUSUAL_WEIGHT)
            .take(MAX_UNUSUAL_FEATURES)
            .filter(|&(_, i)| shares[i] > 0.0)
            .map(|(_, i)| {
                let (value, training_share) = if i < categorical {
                    let value = &row.categorical[i];
                    (
                        FeatureValue::Text(value.clone()),
                        Some(self.encoder.share(i, value)),
                    )
                } else {
                    (FeatureValue::Number(row.numeric[i - categorical]), None)
                };
                UnusualFeature {
                    feature: specs.get(i).map_or("?", |s| s.name).to_owned(),
                    value,
                    weight: shares[i],
                    training_share,
                }
            })
            .collect())
    }

    /// Checks a model read back from storage: trained on today's features for its scope, and
    /// its parts fit together.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.features_version != FEATURES_VERSION {
            return Err(ModelError::InvalidParameters(format!(
                "the model was trained on features version {}, this engine computes version {}; train it again",
                self.features_version, FEATURES_VERSION
            )));
        }
        let (categorical, numeric) = FeatureKind::counts(schema(self.scope));
        if self.encoder.width() != categorical + numeric
            || self.forest.width() != self.encoder.width()
        {
            return Err(ModelError::InvalidParameters(
                "the stored model's encoder and forest do not fit its scope's features".into(),
            ));
        }
        self.forest.validate()
    }
}
