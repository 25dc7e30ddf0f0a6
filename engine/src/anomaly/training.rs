//! Training a model version from a session's rows: the encoder and forest, and a summary of how
//! the rows it learnt from score, so that a threshold can be chosen against them.

use serde::{Deserialize, Serialize};

use super::features::{FrequencyEncoder, RawFeatures, FEATURES_VERSION};
use super::{AnomalyModel, FeatureMatrix, ForestParams, IsolationForest, ModelError, ModelScope};

/// How the training rows scored on the forest grown from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub rows: usize,
    pub features: usize,
    pub score_p50: f64,
    pub score_p99: f64,
    pub score_max: f64,
}

/// Learns the encoding of `rows` (an event scope's raw features), grows a forest on them and
/// scores them.
pub fn train(
    params: ForestParams,
    scope: ModelScope,
    rows: &[RawFeatures],
) -> Result<(AnomalyModel, TrainingSummary), ModelError> {
    let encoder = FrequencyEncoder::fit(rows)?;
    let mut matrix = FeatureMatrix::new(encoder.width())?;
    for row in rows {
        matrix.push(&encoder.encode(row)?)?;
    }
    let (forest, summary) = train_forest(params, &matrix, &encoder.single_valued_columns())?;
    let model = AnomalyModel {
        scope,
        features_version: FEATURES_VERSION,
        encoder,
        forest,
    };
    // Rows of another shape than the scope's features would make a model no engine can use.
    model.validate()?;
    Ok((model, summary))
}

/// Grows a forest on numeric rows and scores them; `floors` as `IsolationForest::fit_with_floors`.
pub fn train_forest(
    params: ForestParams,
    rows: &FeatureMatrix,
    floors: &[u32],
) -> Result<(IsolationForest, TrainingSummary), ModelError> {
    let forest = IsolationForest::fit_with_floors(params, rows, floors)?;
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
    use crate::anomaly::{FeatureValue, MAX_UNUSUAL_FEATURES};

    fn device_row(action: &str, hour: f64) -> RawFeatures {
        RawFeatures {
            categorical: vec![action.into(), "file".into(), "private".into()],
            numeric: vec![hour, 0.0, 0.0, 1.0],
        }
    }

    /// 300 events of a usual day: opening, reading and writing files, 9:00 to 16:00, from a
    /// private address.
    fn office_hours() -> Vec<RawFeatures> {
        (0..300)
            .map(|i| {
                device_row(
                    ["open", "read", "write"][i % 3],
                    f64::from(9 + (i % 8) as u32),
                )
            })
            .collect()
    }

    #[test]
    fn a_trained_model_scores_the_unusual_above_the_usual_and_survives_storage() {
        let mut rows = office_hours();
        rows.push(device_row("read", 3.0));
        let (model, summary) = train(ForestParams::default(), ModelScope::Device, &rows).unwrap();
        assert_eq!((summary.rows, summary.features), (301, 7));
        assert!(summary.score_p50 <= summary.score_p99 && summary.score_p99 <= summary.score_max);
        model.validate().unwrap();
        let usual = model.score(&device_row("read", 10.0)).unwrap();
        // A never-seen action at 3 in the morning.
        let unusual = model.score(&device_row("format_disk", 3.0)).unwrap();
        assert!(unusual > usual + 0.05, "unusual {unusual}, usual {usual}");

        let stored = serde_json::to_value(&model).unwrap();
        let back: AnomalyModel = serde_json::from_value(stored.clone()).unwrap();
        back.validate().unwrap();
        assert_eq!(back.score(&device_row("read", 10.0)).unwrap(), usual);
        // A model of another features version, or of the other scope's shape, is refused.
        let mut old = stored.clone();
        old["features_version"] = 0.into();
        let old: AnomalyModel = serde_json::from_value(old).unwrap();
        assert!(old
            .validate()
            .unwrap_err()
            .to_string()
            .contains("train it again"));
        let mut other = stored;
        other["scope"] = "cloudtrail".into();
        let other: AnomalyModel = serde_json::from_value(other).unwrap();
        assert!(other.validate().is_err());
    }

    #[test]
    fn an_unusual_event_names_what_made_it_so() {
        let mut rows = office_hours();
        rows.push(device_row("format_disk", 12.0));
        let (model, _) = train(ForestParams::default(), ModelScope::Device, &rows).unwrap();
        // A usual action at 3 in the morning: the hour stands out, and nothing categorical.
        let at_night = model.unusual(&device_row("read", 3.0)).unwrap();
        assert_eq!(at_night[0].feature, "hour_of_day", "{at_night:?}");
        assert_eq!(at_night[0].value, FeatureValue::Number(3.0));
        assert_eq!(at_night[0].training_share, None);
        // An action seen once in training, in office hours: the action, and how rare it was.
        let new_action = model.unusual(&device_row("format_disk", 10.0)).unwrap();
        assert_eq!(new_action[0].feature, "action", "{new_action:?}");
        assert_eq!(
            new_action[0].value,
            FeatureValue::Text("format_disk".into())
        );
        assert_eq!(new_action[0].training_share, Some(1.0 / 301.0));
        for unusual in [&at_night, &new_action] {
            assert!((1..=MAX_UNUSUAL_FEATURES).contains(&unusual.len()));
            assert!(unusual.windows(2).all(|w| w[0].weight >= w[1].weight));
        }
    }

    #[test]
    fn a_new_value_where_training_had_one_stands_out() {
        // Every training event touched a file from a private address.
        let rows = office_hours();
        let (model, _) = train(ForestParams::default(), ModelScope::Device, &rows).unwrap();
        let mut usb = device_row("read", 10.0);
        usb.categorical[1] = "usb".into();
        let usual = model.score(&device_row("read", 10.0)).unwrap();
        let new = model.score(&usb).unwrap();
        assert!(new > usual + 0.1, "new resource type {new}, usual {usual}");
        let unusual = model.unusual(&usb).unwrap();
        assert_eq!(
            unusual[0].value,
            FeatureValue::Text("usb".into()),
            "{unusual:?}"
        );
        assert_eq!(unusual[0].training_share, Some(0.0));
        // Training rows themselves are not set apart by it: they all score alike.
        let scores: Vec<f64> = rows[..3].iter().map(|r| model.score(r).unwrap()).collect();
        assert!(
            scores.iter().all(|s| (s - usual).abs() < 0.1),
            "{scores:?} vs {usual}"
        );
    }

    #[test]
    fn rows_that_are_not_the_scopes_features_are_refused() {
        let rows: Vec<RawFeatures> = (0..10).map(|i| device_row("read", f64::from(i))).collect();
        let err = train(ForestParams::default(), ModelScope::Cloudtrail, &rows).unwrap_err();
        assert!(err.to_string().contains("do not fit"), "{err}");
    }

    #[test]
    fn too_few_rows_is_an_error() {
        for rows in [vec![], vec![device_row("read", 1.0)]] {
            let err = train(ForestParams::default(), ModelScope::Device, &rows).unwrap_err();
            assert!(matches!(err, ModelError::NotEnoughRows { .. }), "{err}");
        }
    }
}
