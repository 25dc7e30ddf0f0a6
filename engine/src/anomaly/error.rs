//! What training, scoring and evaluating an anomaly model can refuse.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ModelError {
    #[error("a model needs at least {needed} rows to train on, got {rows}")]
    NotEnoughRows { rows: usize, needed: usize },
    #[error("a model needs at least one feature")]
    NoFeatures,
    #[error("row {row} has {found} values, expected {expected}")]
    WrongWidth {
        row: usize,
        expected: usize,
        found: usize,
    },
    #[error("row {row}, feature {feature}: {value} is not a finite number")]
    NotFinite {
        row: usize,
        feature: usize,
        value: f64,
    },
    #[error("{0}")]
    InvalidParameters(String),
    #[error("{0}")]
    InvalidLabels(String),
}
