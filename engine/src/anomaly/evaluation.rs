//! How well scores separate labelled anomalies from the rest.

use smartcore::metrics::roc_auc_score;

use super::ModelError;

/// The area under the ROC curve of `scores` (higher = more anomalous) against `labels` (true =
/// anomaly): the chance that a random anomaly scores above a random normal row, ties counting
/// half. Both classes must be present.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Result<f64, ModelError> {
    if labels.len() != scores.len() {
        return Err(ModelError::InvalidLabels(format!(
            "{} labels for {} scores",
            labels.len(),
            scores.len()
        )));
    }
    let positives = labels.iter().filter(|l| **l).count();
    if positives == 0 || positives == labels.len() {
        return Err(ModelError::InvalidLabels(
            "the labels must include both anomalies (1) and normal rows (0)".into(),
        ));
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(ModelError::NotFinite {
            row: i,
            feature: 0,
            value: scores[i],
        });
    }
    let truth: Vec<f64> = labels.iter().map(|&l| f64::from(u8::from(l))).collect();
    Ok(roc_auc_score(&truth, &scores.to_vec()))
}

/// Of the `k` highest-scoring rows, the share labelled anomalies: what an analyst who reads the
/// top `k` alerts would find. With `k` = the number of anomalies, this is R-precision.
pub fn precision_at_k(labels: &[bool], scores: &[f64], k: usize) -> Result<f64, ModelError> {
    if labels.len() != scores.len() || k == 0 || k > labels.len() {
        return Err(ModelError::InvalidLabels(format!(
            "precision at {k} needs as many labels as scores and 1 ≤ k ≤ {}",
            labels.len()
        )));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let hits = order[..k].iter().filter(|&&i| labels[i]).count();
    Ok(hits as f64 / k as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_inverted_and_tied() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&labels, &[0.1, 0.2, 0.8, 0.9]).unwrap(), 1.0);
        assert_eq!(roc_auc(&labels, &[0.9, 0.8, 0.2, 0.1]).unwrap(), 0.0);
        assert_eq!(roc_auc(&labels, &[0.5; 4]).unwrap(), 0.5);
    }

    #[test]
    fn matches_a_hand_count() {
        // Pairs (anomaly, normal) ordered right: (0.7 > 0.3), (0.7 > 0.6), (0.4 > 0.3), and
        // (0.4 < 0.6) wrong: 3 of 4.
        let auc = roc_auc(&[false, true, false, true], &[0.3, 0.7, 0.6, 0.4]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12, "{auc}");
    }

    #[test]
    fn precision_counts_the_top_k() {
        let labels = [false, true, false, true];
        let scores = [0.3, 0.7, 0.6, 0.4];
        assert_eq!(precision_at_k(&labels, &scores, 1).unwrap(), 1.0);
        assert_eq!(precision_at_k(&labels, &scores, 2).unwrap(), 0.5);
        assert_eq!(precision_at_k(&labels, &scores, 4).unwrap(), 0.5);
        assert!(precision_at_k(&labels, &scores, 0).is_err());
        assert!(precision_at_k(&labels, &scores, 5).is_err());
    }

    #[test]
    fn refuses_one_class_mismatched_lengths_and_nan() {
        assert!(roc_auc(&[true, true], &[0.1, 0.2]).is_err());
        assert!(roc_auc(&[true, false], &[0.1]).is_err());
        assert!(roc_auc(&[true, false], &[0.1, f64::NAN]).is_err());
    }
}
