//! Anomaly models: rows of numeric features, the Isolation Forest that scores them, and how well
//! scores match labels.

mod error;
mod evaluation;
mod feature_matrix;
pub mod forest;
mod scope;
mod training;

pub use error::ModelError;
pub use evaluation::{precision_at_k, roc_auc};
pub use feature_matrix::FeatureMatrix;
pub use forest::{ForestParams, IsolationForest};
pub use scope::ModelScope;
pub use training::{train, TrainingSummary};
