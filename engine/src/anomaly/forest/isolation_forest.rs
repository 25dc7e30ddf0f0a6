//! An Isolation Forest (Liu, Ting and Zhou, 2008): trees grown on small random subsamples isolate
//! unusual points in fewer splits, and the average depth at which a point is isolated becomes a
//! score `s = 2^(−E[h(x)] / c(ψ))` in (0, 1): near 1 for anomalies, about 0.5 or below for the rest.
//!
//! Defaults are the paper's: 100 trees, subsamples of ψ = 256 rows, height limit ⌈log₂ ψ⌉. A
//! forest is reproducible: tree `t` draws from its own ChaCha8 stream of the seed, so the same
//! data and seed grow the same trees.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::isolation_tree::{subsample, IsolationTree};
use super::path_length::average_path_length;
use crate::anomaly::feature_matrix::check_row;
use crate::anomaly::{FeatureMatrix, ModelError};

/// How a forest is grown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForestParams {
    pub trees: usize,
    /// ψ: rows drawn (without replacement) for each tree; fewer if the data has fewer.
    pub sample_size: usize,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            trees: 100,
            sample_size: 256,
            seed: 0,
        }
    }
}

impl ForestParams {
    /// Most trees a forest may have: past this the score stops changing and memory keeps growing.
    pub const MAX_TREES: usize = 10_000;
    /// Largest subsample: the paper finds 256 enough; the complete-tree layout doubles per level.
    pub const MAX_SAMPLE_SIZE: usize = 1 << 16;

    fn check(&self) -> Result<(), ModelError> {
        if !(1..=Self::MAX_TREES).contains(&self.trees) {
            return Err(ModelError::InvalidParameters(format!(
                "trees must be 1 to {}, got {}",
                Self::MAX_TREES,
                self.trees
            )));
        }
        if !(2..=Self::MAX_SAMPLE_SIZE).contains(&self.sample_size) {
            return Err(ModelError::InvalidParameters(format!(
                "sample size must be 2 to {}, got {}",
                Self::MAX_SAMPLE_SIZE,
                self.sample_size
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForest {
    params: ForestParams,
    /// Features per row.
    width: usize,
    /// ψ as used: the sample size, or the number of rows if there were fewer.
    sample_size: usize,
    trees: Vec<IsolationTree>,
}

impl IsolationForest {
    /// Grows a forest on `data` (at least two rows).
    pub fn fit(params: ForestParams, data: &FeatureMatrix) -> Result<Self, ModelError> {
        Self::fit_with_floors(params, data, &[])
    }

    /// As [`fit`](Self::fit), with `floors`: columns of a single value in `data` whose domain
    /// also holds 0, a value never seen in training (`IsolationTree::grow_with_floors`). At most
    /// 64.
    pub fn fit_with_floors(
        params: ForestParams,
        data: &FeatureMatrix,
        floors: &[u32],
    ) -> Result<Self, ModelError> {
        params.check()?;
        if floors.len() > 64 || floors.iter().any(|&f| f as usize >= data.width()) {
            return Err(ModelError::InvalidParameters(format!(
                "at most 64 floor columns, each below {}, got {floors:?}",
                data.width()
            )));
        }
        if data.rows() < 2 {
            return Err(ModelError::NotEnoughRows {
                rows: data.rows(),
                needed: 2,
            });
        }
        if u32::try_from(data.rows()).is_err() {
            return Err(ModelError::InvalidParameters(format!(
                "at most {} rows can be trained on, got {}",
                u32::MAX,
                data.rows()
            )));
        }
        let sample_size = params.sample_size.min(data.rows());
        let height = height_limit(sample_size);
        let trees = (0..params.trees)
            .map(|t| {
                let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
                rng.set_stream(t as u64);
                let mut sample = subsample(data.rows(), sample_size, &mut rng);
                IsolationTree::grow_with_floors(data, &mut sample, height, floors, &mut rng)
            })
            .collect();
        Ok(IsolationForest {
            params,
            width: data.width(),
            sample_size,
            trees,
        })
    }

    pub fn params(&self) -> ForestParams {
        self.params
    }

    /// Features per row this forest scores.
    pub fn width(&self) -> usize {
        self.width
    }

    /// ψ as used in training.
    pub fn sample_size(&self) -> usize {
        self.sample_size
    }

    /// The anomaly score of one row, in (0, 1].
    pub fn score(&self, row: &[f64]) -> Result<f64, ModelError> {
        check_row(row, self.width, 0)?;
        let total: f64 = self.trees.iter().map(|t| t.path_length(row)).sum();
        Ok(self.to_score(total))
    }

    /// The scores of every row of `data`, in order. Rows are walked sixteen at a time in lockstep
    /// through each tree, a block at a time, so a tree's arrays stay in cache while it serves
    /// the block.
    pub fn score_all(&self, data: &FeatureMatrix) -> Result<Vec<f64>, ModelError> {
        if data.width() != self.width && !data.is_empty() {
            return Err(ModelError::WrongWidth {
                row: 0,
                expected: self.width,
                found: data.width(),
            });
        }
        const LANES: usize = 16;
        const BLOCK: usize = 4 * LANES;
        let mut scores = Vec::with_capacity(data.rows());
        let mut totals = [0.0_f64; BLOCK];
        for start in (0..data.rows()).step_by(BLOCK) {
            let end = (start + BLOCK).min(data.rows());
            let totals = &mut totals[..end - start];
            totals.fill(0.0);
            for tree in &self.trees {
                let mut lanes = totals.chunks_exact_mut(LANES);
                let mut r = start;
                for lane in &mut lanes {
                    let rows: [&[f64]; LANES] = std::array::from_fn(|k| data.row(r + k));
                    let lane: &mut [f64; LANES] = lane.try_into().expect("a full lane");
                    tree.add_path_lengths(&rows, lane);
                    r += LANES;
                }
                for total in lanes.into_remainder() {
                    *total += tree.path_length(data.row(r));
                    r += 1;
                }
            }
            scores.extend(totals.iter().map(|&t| self.to_score(t)));
        }
        Ok(scores)
    }

    /// How much each feature did to isolate `row`, as shares summing to 1 (all 0 if no tree
    /// split it at all): the features that made an anomalous row stand out come first when
    /// sorted. Costs a walk per tree, so it is for the few rows above a threshold.
    pub fn attribution(&self, row: &[f64]) -> Result<Vec<f64>, ModelError> {
        check_row(row, self.width, 0)?;
        let mut credit = vec![0.0; self.width];
        for tree in &self.trees {
            tree.credit_path(row, &mut credit);
        }
        let total: f64 = credit.iter().sum();
        if total > 0.0 {
            credit.iter_mut().for_each(|c| *c /= total);
        }
        Ok(credit)
    }

    fn to_score(&self, total_path_length: f64) -> f64 {
        let mean = total_path_length / self.trees.len() as f64;
        (-mean / average_path_length(self.sample_size)).exp2()
    }

    /// Checks a forest read back from storage: parameters in range and every tree walkable on
    /// rows of its width.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.params.check()?;
        let consistent = self.width > 0
            && (2..=self.params.sample_size).contains(&self.sample_size)
            && self.trees.len() == self.params.trees
            && self.trees.iter().all(|t| {
                t.is_consistent(self.width) && t.height() == height_limit(self.sample_size)
            });
        if consistent {
            Ok(())
        } else {
            Err(ModelError::InvalidParameters(
                "the stored forest is inconsistent".into(),
            ))
        }
    }
}

/// ⌈log₂ ψ⌉: about the average depth of a tree on ψ points, past which only normal points remain.
fn height_limit(sample_size: usize) -> u8 {
    sample_size.next_power_of_two().trailing_zeros() as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// A standard normal draw (Box–Muller).
    fn normal(rng: &mut ChaCha8Rng) -> f64 {
        let u: f64 = 1.0 - rng.random::<f64>();
        let v: f64 = rng.random();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// `n` points of a 2-D standard normal cluster, then one far away.
    fn cluster_and_outlier(n: usize, seed: u64) -> FeatureMatrix {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rows: Vec<Vec<f64>> = (0..n)
            .map(|_| vec![normal(&mut rng), normal(&mut rng)])
            .collect();
        rows.push(vec![8.0, -8.0]);
        FeatureMatrix::from_rows(&rows).unwrap()
    }

    #[test]
    fn height_limit_is_ceil_log2() {
        assert_eq!(height_limit(2), 1);
        assert_eq!(height_limit(3), 2);
        assert_eq!(height_limit(256), 8);
        assert_eq!(height_limit(257), 9);
    }

    #[test]
    fn the_outlier_scores_highest_and_the_cluster_about_a_half() {
        let data = cluster_and_outlier(1_000, 5);
        let forest = IsolationForest::fit(ForestParams::default(), &data).unwrap();
        let scores = forest.score_all(&data).unwrap();
        let outlier = *scores.last().unwrap();
        let inliers = &scores[..scores.len() - 1];
        let max_inlier = inliers.iter().copied().fold(0.0, f64::max);
        let mean_inlier = inliers.iter().sum::<f64>() / inliers.len() as f64;
        assert!(outlier > 0.7, "outlier {outlier}");
        assert!(outlier > max_inlier, "outlier {outlier} vs {max_inlier}");
        assert!(
            (0.35..0.5).contains(&mean_inlier),
            "mean inlier {mean_inlier}"
        );
        assert!(scores.iter().all(|s| *s > 0.0 && *s <= 1.0));
    }

    #[test]
    fn attribution_names_the_feature_that_isolates_a_row() {
        // Three features of the same cluster; the last row is usual in two and far out in one.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut rows: Vec<Vec<f64>> = (0..500)
            .map(|_| (0..3).map(|_| normal(&mut rng)).collect())
            .collect();
        for far in 0..3 {
            let mut row = vec![0.1, -0.2, 0.3];
            row[far] = 9.0;
            rows.push(row);
        }
        let data = FeatureMatrix::from_rows(&rows).unwrap();
        let forest = IsolationForest::fit(ForestParams::default(), &data).unwrap();
        for far in 0..3 {
            let shares = forest.attribution(data.row(500 + far)).unwrap();
            assert!(
                (shares.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "{shares:?}"
            );
            let top = (0..3)
                .max_by(|&a, &b| shares[a].total_cmp(&shares[b]))
                .unwrap();
            assert_eq!(top, far, "{shares:?}");
            assert!(shares[far] > 0.5, "{shares:?}");
        }
        assert!(forest.attribution(&[0.0]).is_err());
    }

    #[test]
    fn one_row_and_a_block_score_the_same() {
        let data = cluster_and_outlier(300, 9);
        let forest = IsolationForest::fit(ForestParams::default(), &data).unwrap();
        let all = forest.score_all(&data).unwrap();
        for (i, row) in data.iter().enumerate() {
            assert_eq!(forest.score(row).unwrap(), all[i]);
        }
    }

    #[test]
    fn the_same_seed_grows_the_same_forest_and_another_seed_does_not() {
        let data = cluster_and_outlier(500, 1);
        let params = ForestParams {
            seed: 42,
            ..ForestParams::default()
        };
        let a = IsolationForest::fit(params, &data).unwrap();
        let b = IsolationForest::fit(params, &data).unwrap();
        assert_eq!(a, b);
        let c = IsolationForest::fit(ForestParams { seed: 43, ..params }, &data).unwrap();
        assert_ne!(a.score_all(&data).unwrap(), c.score_all(&data).unwrap());
    }

    #[test]
    fn identical_rows_score_exactly_a_half() {
        let data = FeatureMatrix::from_rows(&vec![vec![3.0, 1.0]; 40]).unwrap();
        let forest = IsolationForest::fit(ForestParams::default(), &data).unwrap();
        assert_eq!(forest.sample_size(), 40);
        assert!((forest.score(&[3.0, 1.0]).unwrap() - 0.5).abs() < 1e-12);
        // A row never seen lands in the same single leaf: no split exists to isolate it.
        assert!((forest.score(&[100.0, -1.0]).unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn refuses_what_it_cannot_train_or_score() {
        let one = FeatureMatrix::from_rows(&[vec![1.0]]).unwrap();
        assert_eq!(
            IsolationForest::fit(ForestParams::default(), &one),
            Err(ModelError::NotEnoughRows { rows: 1, needed: 2 })
        );
        let data = cluster_and_outlier(10, 2);
        for params in [
            ForestParams {
                trees: 0,
                ..ForestParams::default()
            },
            ForestParams {
                sample_size: 1,
                ..ForestParams::default()
            },
            ForestParams {
                trees: ForestParams::MAX_TREES + 1,
                ..ForestParams::default()
            },
        ] {
            let err = IsolationForest::fit(params, &data).unwrap_err();
            assert!(matches!(err, ModelError::InvalidParameters(_)), "{err}");
        }
        let forest = IsolationForest::fit(ForestParams::default(), &data).unwrap();
        assert!(matches!(
            forest.score(&[1.0]),
            Err(ModelError::WrongWidth { .. })
        ));
        assert!(matches!(
            forest.score(&[1.0, f64::NAN]),
            Err(ModelError::NotFinite { .. })
        ));
        let three = FeatureMatrix::from_rows(&[vec![1.0, 2.0, 3.0]]).unwrap();
        assert!(forest.score_all(&three).is_err());
    }

    #[test]
    fn survives_a_round_trip_through_json_and_refuses_a_tampered_one() {
        let data = cluster_and_outlier(100, 3);
        let forest = IsolationForest::fit(
            ForestParams {
                trees: 5,
                ..ForestParams::default()
            },
            &data,
        )
        .unwrap();
        let json = serde_json::to_string(&forest).unwrap();
        let back: IsolationForest = serde_json::from_str(&json).unwrap();
        back.validate().unwrap();
        assert_eq!(
            back.score_all(&data).unwrap(),
            forest.score_all(&data).unwrap()
        );
        let mut tampered: serde_json::Value = serde_json::from_str(&json).unwrap();
        tampered["width"] = 1.into();
        let tampered: IsolationForest = serde_json::from_value(tampered).unwrap();
        assert!(tampered.validate().is_err());
    }

    #[test]
    fn random_data_never_panics() {
        let mut rng = ChaCha8Rng::seed_from_u64(77);
        for _ in 0..50 {
            let rows = rng.random_range(2..300);
            let width = rng.random_range(1..6);
            let values: Vec<Vec<f64>> = (0..rows)
                .map(|_| {
                    (0..width)
                        .map(|_| f64::from(rng.random_range(-3..3)))
                        .collect()
                })
                .collect();
            let data = FeatureMatrix::from_rows(&values).unwrap();
            let params = ForestParams {
                trees: 10,
                sample_size: rng.random_range(2..400),
                seed: rng.random(),
            };
            let forest = IsolationForest::fit(params, &data).unwrap();
            forest.validate().unwrap();
            for s in forest.score_all(&data).unwrap() {
                assert!(s > 0.0 && s <= 1.0, "{s}");
            }
        }
    }
}
