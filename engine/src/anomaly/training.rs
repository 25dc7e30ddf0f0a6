//! Training a model version from a session's rows: the forest, and a summary of how the rows
//! it learnt from score, so that a threshold can be chosen against them.

use serde::{Deserialize, Serialize};

use super::{FeatureMatrix, ForestParams, IsolationForest, ModelError};

/// How the training rows scored on the forest grown from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub rows: usize,
    pub features: usize,
    pub score_p50: f64,
    pub score_p99: f64,
    pub score_max: f64,
}

/// Grows a forest on `rows` and scores them.
pub fn train(
    params: ForestParams,
    rows: &FeatureMatrix,
) -> Result<(IsolationForest, TrainingSummary), ModelError> {
    let forest = IsolationForest::fit(params, rows)?;
    let mut scores = forest.score_all(rows)?;
    scores.sort_by(f64::total_cmp);
    let at = |q: f64| scores[((scores.len() - 1) as f64 * q).round() as usize];
    let summary = TrainingSummary {
        rows: rows.rows(),
        features: rows.width(),
        score_p50: at(0.5),
        score_p99: at(0.99),
        score_max: at(1.0),
    };
    Ok((forest, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_the_training_scores() {
        let mut rows: Vec<Vec<f64>> = (0..200).map(|i| vec![f64::from(i % 10), 1.0]).collect();
        rows.push(vec![500.0, -40.0]);
        let data = FeatureMatrix::from_rows(&rows).unwrap();
        let (forest, summary) = train(ForestParams::default(), &data).unwrap();
        assert_eq!((summary.rows, summary.features), (201, 2));
        assert!(summary.score_p50 <= summary.score_p99 && summary.score_p99 <= summary.score_max);
        assert_eq!(summary.score_max, forest.score(&[500.0, -40.0]).unwrap());
    }

    #[test]
    fn too_few_rows_is_an_error() {
        let data = FeatureMatrix::from_rows(&[vec![1.0]]).unwrap();
        assert!(matches!(
            train(ForestParams::default(), &data),
            Err(ModelError::NotEnoughRows { .. })
        ));
    }
}
