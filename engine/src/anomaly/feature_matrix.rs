//! Rows of numeric features, all of one width and all finite: what a model trains on and scores.

use super::ModelError;

/// A row-major matrix of finite `f64` values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureMatrix {
    values: Vec<f64>,
    width: usize,
}

impl FeatureMatrix {
    /// An empty matrix whose rows will have `width` features.
    pub fn new(width: usize) -> Result<Self, ModelError> {
        if width == 0 {
            return Err(ModelError::NoFeatures);
        }
        Ok(FeatureMatrix {
            values: Vec::new(),
            width,
        })
    }

    /// A matrix of the given rows; they must all be as wide as the first.
    pub fn from_rows<R: AsRef<[f64]>>(rows: &[R]) -> Result<Self, ModelError> {
        let width = rows.first().map_or(0, |r| r.as_ref().len());
        let mut matrix = FeatureMatrix::new(width)?;
        matrix.values.reserve(width * rows.len());
        for row in rows {
            matrix.push(row.as_ref())?;
        }
        Ok(matrix)
    }

    /// Appends a row, refusing one of another width or with a value that is not finite (a NaN
    /// would walk every tree down one side and hide in the score).
    pub fn push(&mut self, row: &[f64]) -> Result<(), ModelError> {
        check_row(row, self.width, self.rows())?;
        self.values.extend_from_slice(row);
        Ok(())
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn rows(&self) -> usize {
        self.values.len() / self.width.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn row(&self, index: usize) -> &[f64] {
        &self.values[index * self.width..(index + 1) * self.width]
    }

    /// The value of `feature` in row `index`.
    pub fn get(&self, index: usize, feature: usize) -> f64 {
        self.values[index * self.width + feature]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[f64]> {
        self.values.chunks_exact(self.width.max(1))
    }
}

/// Checks that a row numbered `index` has `width` finite values.
pub(super) fn check_row(row: &[f64], width: usize, index: usize) -> Result<(), ModelError> {
    if row.len() != width {
        return Err(ModelError::WrongWidth {
            row: index,
            expected: width,
            found: row.len(),
        });
    }
    match row.iter().position(|v| !v.is_finite()) {
        Some(feature) => Err(ModelError::NotFinite {
            row: index,
            feature,
            value: row[feature],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_rows_in_order() {
        let m = FeatureMatrix::from_rows(&[vec![1.0, 2.0], vec![3.0, 4.0]]).unwrap();
        assert_eq!((m.rows(), m.width()), (2, 2));
        assert_eq!(m.row(1), &[3.0, 4.0]);
        assert_eq!(m.get(0, 1), 2.0);
        assert_eq!(m.iter().count(), 2);
    }

    #[test]
    fn refuses_ragged_empty_and_non_finite_rows() {
        assert_eq!(
            FeatureMatrix::from_rows(&[vec![1.0, 2.0], vec![3.0]]),
            Err(ModelError::WrongWidth {
                row: 1,
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            FeatureMatrix::from_rows::<Vec<f64>>(&[]),
            Err(ModelError::NoFeatures)
        );
        let err = FeatureMatrix::from_rows(&[vec![1.0, f64::NAN]]).unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::NotFinite {
                    row: 0,
                    feature: 1,
                    ..
                }
            ),
            "{err}"
        );
        let err = FeatureMatrix::from_rows(&[vec![f64::INFINITY]]).unwrap_err();
        assert!(
            matches!(err, ModelError::NotFinite { feature: 0, .. }),
            "{err}"
        );
    }
}
