//! Categorical values as numbers a tree can split: each value becomes the share of training rows
//! that had it. A value never seen in training becomes 0, the rarest there is, so it survives
//! (it is not an error) and it stands out (as it should).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RawFeatures;
use crate::anomaly::ModelError;

/// Distinct values kept per column; rarer ones than the most frequent this many are encoded as
/// unseen. Keeps a model's size bounded when a column is close to unique per event.
pub const MAX_VALUES_PER_COLUMN: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrequencyEncoder {
    /// Per categorical column, each value's share of the training rows.
    columns: Vec<BTreeMap<String, f64>>,
    /// Numeric features after the categorical ones.
    numeric: usize,
}

impl FrequencyEncoder {
    /// Learns the shares from training rows, which must all have the same shape.
    pub fn fit(rows: &[RawFeatures]) -> Result<Self, ModelError> {
        let Some(first) = rows.first() else {
            return Err(ModelError::NotEnoughRows { rows: 0, needed: 2 });
        };
        let (categorical, numeric) = (first.categorical.len(), first.numeric.len());
        let mut counts: Vec<BTreeMap<&str, u64>> = vec![BTreeMap::new(); categorical];
        for (i, row) in rows.iter().enumerate() {
            if row.categorical.len() != categorical || row.numeric.len() != numeric {
                return Err(ModelError::WrongWidth {
                    row: i,
                    expected: categorical + numeric,
                    found: row.categorical.len() + row.numeric.len(),
                });
            }
            for (column, value) in counts.iter_mut().zip(&row.categorical) {
                *column.entry(value.as_str()).or_default() += 1;
            }
        }
        let total = rows.len() as f64;
        let columns = counts
            .into_iter()
            .map(|column| {
                let mut values: Vec<(&str, u64)> = column.into_iter().collect();
                // Most frequent first; ties by value, so that the cut is deterministic.
                values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                values.truncate(MAX_VALUES_PER_COLUMN);
                values
                    .into_iter()
                    .map(|(v, n)| (v.to_owned(), n as f64 / total))
                    .collect()
            })
            .collect();
        Ok(FrequencyEncoder { columns, numeric })
    }

    /// Features per encoded row.
    pub fn width(&self) -> usize {
        self.columns.len() + self.numeric
    }

    /// The row as numbers: the categorical values' shares, then the numeric values.
    pub fn encode(&self, row: &RawFeatures) -> Result<Vec<f64>, ModelError> {
        if row.categorical.len() != self.columns.len() || row.numeric.len() != self.numeric {
            return Err(ModelError::WrongWidth {
                row: 0,
                expected: self.width(),
                found: row.categorical.len() + row.numeric.len(),
            });
        }
        let mut out = Vec::with_capacity(self.width());
        for (column, value) in self.columns.iter().zip(&row.categorical) {
            out.push(column.get(value).copied().unwrap_or(0.0));
        }
        out.extend_from_slice(&row.numeric);
        Ok(out)
    }

    /// The categorical columns that held a single value in every training row: a new value
    /// there can only stand out if the forest may split them against 0 (`fit_with_floors`).
    pub fn single_valued_columns(&self) -> Vec<u32> {
        (0..self.columns.len() as u32)
            .filter(|&c| self.columns[c as usize].len() == 1)
            .collect()
    }

    /// The share a value had in training (0 if never seen): for saying which features made a
    /// row unusual.
    pub fn share(&self, column: usize, value: &str) -> f64 {
        self.columns
            .get(column)
            .and_then(|c| c.get(value))
            .copied()
            .unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cat: &[&str], num: &[f64]) -> RawFeatures {
        RawFeatures {
            categorical: cat.iter().map(|s| s.to_string()).collect(),
            numeric: num.to_vec(),
        }
    }

    #[test]
    fn shares_of_training_rows_and_zero_for_the_unseen() {
        let rows = [
            row(&["GetObject", "us-east-1"], &[3.0]),
            row(&["GetObject", "us-east-1"], &[4.0]),
            row(&["GetObject", "eu-west-1"], &[5.0]),
            row(&["DeleteTrail", "us-east-1"], &[6.0]),
        ];
        let enc = FrequencyEncoder::fit(&rows).unwrap();
        assert_eq!(enc.width(), 3);
        assert_eq!(enc.encode(&rows[0]).unwrap(), vec![0.75, 0.75, 3.0]);
        assert_eq!(enc.encode(&rows[3]).unwrap(), vec![0.25, 0.75, 6.0]);
        assert_eq!(
            enc.encode(&row(&["StopLogging", "ap-south-1"], &[1.0]))
                .unwrap(),
            vec![0.0, 0.0, 1.0]
        );
        assert_eq!(enc.share(0, "DeleteTrail"), 0.25);
        assert!(enc.encode(&row(&["GetObject"], &[1.0])).is_err());
    }

    #[test]
    fn rows_of_another_shape_are_refused() {
        let rows = [row(&["a"], &[1.0]), row(&["a", "b"], &[1.0])];
        assert!(matches!(
            FrequencyEncoder::fit(&rows),
            Err(ModelError::WrongWidth { row: 1, .. })
        ));
        assert!(FrequencyEncoder::fit(&[]).is_err());
    }

    #[test]
    fn a_column_of_unique_values_is_cut_to_the_most_frequent() {
        let mut rows: Vec<RawFeatures> = (0..MAX_VALUES_PER_COLUMN + 50)
            .map(|i| row(&[&format!("v{i}")], &[]))
            .collect();
        rows.push(row(&["common"], &[]));
        rows.push(row(&["common"], &[]));
        let enc = FrequencyEncoder::fit(&rows).unwrap();
        assert_eq!(enc.columns[0].len(), MAX_VALUES_PER_COLUMN);
        assert!(enc.share(0, "common") > 0.0);
    }
}
