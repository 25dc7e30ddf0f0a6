//! One isolation tree, grown on a subsample by random axis-aligned splits, kept as a complete
//! binary tree in arrays.
//!
//! The layout is what makes scoring fast: node `i`'s children are `2i + 1` and `2i + 2`, so a
//! walk is `height` compare-and-step moves with no pointers and no branch on the node's kind. A
//! leaf reached above the height limit becomes a pass-through split that always goes left (its
//! threshold is `f64::MAX`, which no finite value exceeds), and its path length is stored at the
//! bottom of that leftmost path.

use rand::seq::index;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::path_length::average_path_length;
use crate::anomaly::FeatureMatrix;

/// A split: a row whose `feature` is above `threshold` goes right. Feature and threshold side by
/// side, so that a step of a walk reads one place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Split {
    threshold: f64,
    feature: u32,
}

/// Always left: every finite value is at most `f64::MAX`.
const PASS_THROUGH: Split = Split {
    threshold: f64::MAX,
    feature: 0,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationTree {
    /// The height limit: every walk takes exactly this many steps.
    height: u8,
    /// The `2^height − 1` splits.
    splits: Vec<Split>,
    /// For each of the `2^height` leaves, the depth it sits at plus `c(size)` for the rows of the
    /// subsample it still held: the estimated path length of a row that ends there.
    path_lengths: Vec<f64>,
}

impl IsolationTree {
    /// Grows a tree on the rows of `data` numbered in `sample`, to at most `height` levels.
    #[cfg(test)]
    pub fn grow<R: Rng>(data: &FeatureMatrix, sample: &mut [u32], height: u8, rng: &mut R) -> Self {
        Self::grow_with_floors(data, sample, height, &[], rng)
    }

    /// As [`grow`](Self::grow), with `floors`: columns that held one value in all the training
    /// data but whose domain also holds 0 (a categorical value never seen in training). Such a
    /// column cannot split the training rows, so on its own a new value there would never stand
    /// out; instead it may be split once per path between 0 and its value, which sets no
    /// training row apart and isolates a row with a new value. At most 64 floors.
    pub fn grow_with_floors<R: Rng>(
        data: &FeatureMatrix,
        sample: &mut [u32],
        height: u8,
        floors: &[u32],
        rng: &mut R,
    ) -> Self {
        let splits = (1usize << height) - 1;
        let mut tree = IsolationTree {
            height,
            splits: vec![PASS_THROUGH; splits],
            path_lengths: vec![0.0; splits + 1],
        };
        let mut order: Vec<u32> = (0..data.width() as u32).collect();
        let floors = &floors[..floors.len().min(64)];
        let unused = if floors.len() == 64 {
            u64::MAX
        } else {
            (1u64 << floors.len()) - 1
        };
        let mut grower = Grower {
            data,
            order: &mut order,
            floors,
            rng,
        };
        tree.grow_node(&mut grower, sample, 0, 0, unused);
        tree
    }

    fn grow_node<R: Rng>(
        &mut self,
        g: &mut Grower<'_, R>,
        rows: &mut [u32],
        node: usize,
        depth: u8,
        unused_floors: u64,
    ) {
        if depth == self.height || rows.len() <= 1 {
            return self.leaf(node, depth, rows.len());
        }
        match g.pick(rows, unused_floors) {
            // Every row of this node is the same point: nothing can separate them.
            None => self.leaf(node, depth, rows.len()),
            Some(Pick::Split { feature, low, high }) => {
                let threshold = split_between(low, high, g.rng.random::<f64>());
                self.splits[node] = Split { threshold, feature };
                let mut left = 0;
                for i in 0..rows.len() {
                    if g.data.get(rows[i] as usize, feature as usize) <= threshold {
                        rows.swap(i, left);
                        left += 1;
                    }
                }
                let (l, r) = rows.split_at_mut(left);
                self.grow_node(g, l, 2 * node + 1, depth + 1, unused_floors);
                self.grow_node(g, r, 2 * node + 2, depth + 1, unused_floors);
            }
            Some(Pick::Floor {
                floor,
                feature,
                value,
            }) => {
                let threshold = split_between(0.0, value, g.rng.random::<f64>());
                self.splits[node] = Split { threshold, feature };
                // Every training row is above it: the left is an empty leaf.
                self.leaf(2 * node + 1, depth + 1, 0);
                self.grow_node(
                    g,
                    rows,
                    2 * node + 2,
                    depth + 1,
                    unused_floors & !(1 << floor),
                );
            }
        }
    }

    /// Ends the walk at `node`, `depth` levels down, holding `size` rows: the splits below it
    /// stay pass-through, so the walk lands on the leftmost leaf under it.
    fn leaf(&mut self, node: usize, depth: u8, size: usize) {
        let mut bottom = node;
        for _ in depth..self.height {
            bottom = 2 * bottom + 1;
        }
        let first_leaf = self.splits.len();
        self.path_lengths[bottom - first_leaf] = f64::from(depth) + average_path_length(size);
    }

    pub fn height(&self) -> u8 {
        self.height
    }

    /// The estimated path length of `row` (which must be as wide as the training data).
    #[inline]
    pub fn path_length(&self, row: &[f64]) -> f64 {
        let mut node = 0;
        for _ in 0..self.height {
            let split = self.splits[node];
            let go_right = row[split.feature as usize] > split.threshold;
            node = 2 * node + 1 + usize::from(go_right);
        }
        self.path_lengths[node - self.splits.len()]
    }

    /// Adds the path lengths of `N` rows to `totals`, walking them in lockstep: the `N` walks
    /// do not depend on each other, so the processor overlaps their loads instead of waiting
    /// for one walk's next node at a time.
    #[inline]
    pub fn add_path_lengths<const N: usize>(&self, rows: &[&[f64]; N], totals: &mut [f64; N]) {
        let mut nodes = [0usize; N];
        for _ in 0..self.height {
            for (node, row) in nodes.iter_mut().zip(rows) {
                let split = self.splits[*node];
                let go_right = row[split.feature as usize] > split.threshold;
                *node = 2 * *node + 1 + usize::from(go_right);
            }
        }
        for (total, node) in totals.iter_mut().zip(nodes) {
            *total += self.path_lengths[node - self.splits.len()];
        }
    }

    /// Credits the feature of the last split of `row`'s walk (the one that set it apart) with
    /// `1 / h`, `h` being the path length the walk ends at: a feature that isolates a row
    /// early earns much, one that ends a long walk little. Pass-through steps split nothing.
    pub fn credit_path(&self, row: &[f64], credit: &mut [f64]) {
        let mut node = 0;
        let mut last = None;
        for _ in 0..self.height {
            let split = self.splits[node];
            if split.threshold != f64::MAX {
                last = Some(split.feature);
            }
            let go_right = row[split.feature as usize] > split.threshold;
            node = 2 * node + 1 + usize::from(go_right);
        }
        if let Some(feature) = last {
            let h = self.path_lengths[node - self.splits.len()].max(1.0);
            credit[feature as usize] += 1.0 / h;
        }
    }

    /// Checks what deserialising cannot: the arrays fit the height and every split's feature
    /// exists, so that a walk can never index out of bounds.
    pub(crate) fn is_consistent(&self, width: usize) -> bool {
        let splits = (1usize << self.height.min(30)) - 1;
        self.height <= 30
            && self.splits.len() == splits
            && self.path_lengths.len() == splits + 1
            && self.splits.iter().all(|s| (s.feature as usize) < width)
            && self.path_lengths.iter().all(|p| p.is_finite())
    }
}

/// What a node splits on.
enum Pick {
    /// A feature on which its rows differ, with their smallest and largest value.
    Split { feature: u32, low: f64, high: f64 },
    /// A floor column (`floors[floor]`) not yet split on along this path, and its one value.
    Floor {
        floor: u32,
        feature: u32,
        value: f64,
    },
}

/// What growing a tree reads and draws from.
struct Grower<'a, R: Rng> {
    data: &'a FeatureMatrix,
    order: &'a mut [u32],
    floors: &'a [u32],
    rng: &'a mut R,
}

impl<R: Rng> Grower<'_, R> {
    /// Picks a feature on which the rows differ, trying features in random order (as
    /// scikit-learn's splitter does, a constant feature is skipped rather than ending the
    /// branch), or a floor column still unused on this path.
    fn pick(&mut self, rows: &[u32], unused_floors: u64) -> Option<Pick> {
        for tried in 0..self.order.len() {
            let pick = self.rng.random_range(tried..self.order.len());
            self.order.swap(tried, pick);
            let feature = self.order[tried];
            let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
            for &r in rows {
                let v = self.data.get(r as usize, feature as usize);
                low = low.min(v);
                high = high.max(v);
            }
            if low < high {
                return Some(Pick::Split { feature, low, high });
            }
            if let Some(floor) = self.floors.iter().position(|&f| f == feature) {
                if unused_floors & (1 << floor) != 0 && low > 0.0 {
                    return Some(Pick::Floor {
                        floor: floor as u32,
                        feature,
                        value: low,
                    });
                }
            }
        }
        None
    }
}

/// A threshold a share `u` ∈ [0, 1) of the way from `low` to `high` (`low < high`), such that the
/// row at `low` goes left and the row at `high` goes right, so both sides hold at least one row.
/// Weighted rather than `low + u (high − low)`, which overflows for far-apart finite values;
/// rounding up to `high` falls back to `low`, as scikit-learn's splitter does.
fn split_between(low: f64, high: f64, u: f64) -> f64 {
    let t = (low * (1.0 - u) + high * u).clamp(low, high);
    if t >= high {
        low
    } else {
        t
    }
}

/// A subsample of `size` distinct row numbers out of `rows`.
pub(super) fn subsample<R: Rng>(rows: usize, size: usize, rng: &mut R) -> Vec<u32> {
    index::sample(rng, rows, size)
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn grow(rows: &[Vec<f64>], height: u8, seed: u64) -> IsolationTree {
        let data = FeatureMatrix::from_rows(rows).unwrap();
        let mut sample: Vec<u32> = (0..rows.len() as u32).collect();
        IsolationTree::grow(
            &data,
            &mut sample,
            height,
            &mut ChaCha8Rng::seed_from_u64(seed),
        )
    }

    #[test]
    fn identical_rows_make_one_leaf_at_the_root() {
        let tree = grow(&vec![vec![1.0, 2.0]; 8], 3, 1);
        assert!(tree.is_consistent(2));
        // c(8): the whole subsample is left in the root.
        assert_eq!(tree.path_length(&[1.0, 2.0]), average_path_length(8));
        assert_eq!(tree.path_length(&[-5.0, 99.0]), average_path_length(8));
    }

    #[test]
    fn distinct_rows_are_each_isolated_when_the_tree_is_tall_enough() {
        // Eight distinct points on one axis, height 7: every point ends alone in a leaf, so a
        // training row's path length is a whole number (its depth, c(1) = 0).
        let rows: Vec<Vec<f64>> = (0..8).map(|i| vec![f64::from(i), 0.0]).collect();
        let tree = grow(&rows, 7, 7);
        for row in &rows {
            let p = tree.path_length(row);
            assert!((1.0..=7.0).contains(&p) && p.fract() == 0.0, "{row:?}: {p}");
        }
    }

    #[test]
    fn a_constant_feature_is_skipped_not_a_leaf() {
        // Feature 0 never varies; only feature 1 can split, and it must.
        let rows: Vec<Vec<f64>> = (0..4).map(|i| vec![3.0, f64::from(i)]).collect();
        let tree = grow(&rows, 2, 3);
        assert!(tree.splits[0].threshold < f64::MAX);
        assert_eq!(tree.splits[0].feature, 1);
    }

    #[test]
    fn the_height_limit_caps_the_walk() {
        let rows: Vec<Vec<f64>> = (0..64).map(|i| vec![f64::from(i)]).collect();
        let tree = grow(&rows, 2, 11);
        assert_eq!(tree.height(), 2);
        for row in &rows {
            // At most two splits, then c(rows left), which is at most c(63).
            let p = tree.path_length(row);
            assert!((1.0..=2.0 + average_path_length(63)).contains(&p), "{p}");
        }
    }

    #[test]
    fn thresholds_split_far_apart_values_and_never_reach_the_top() {
        for (low, high) in [
            (-1e308, 1e308),
            (f64::MIN, f64::MAX),
            (0.0, 1.0),
            (1.0, 1.0 + f64::EPSILON),
        ] {
            for u in [0.0, 0.5, 1.0 - f64::EPSILON, 0.999_999_999_999] {
                let t = split_between(low, high, u);
                assert!(
                    t.is_finite() && low <= t && t < high,
                    "{low} {high} {u}: {t}"
                );
            }
        }
        // Far-apart values in a column grow a tree (not a panic) that separates them.
        let tree = grow(&[vec![-1e308], vec![1e308]], 1, 0);
        assert_eq!(tree.path_length(&[-1e308]), 1.0);
        assert_eq!(tree.path_length(&[1e308]), 1.0);
    }

    #[test]
    fn a_corrupt_tree_is_not_consistent() {
        let mut tree = grow(&[vec![0.0], vec![1.0]], 1, 0);
        assert!(tree.is_consistent(1));
        tree.splits[0].feature = 5;
        assert!(!tree.is_consistent(1));
    }
}
