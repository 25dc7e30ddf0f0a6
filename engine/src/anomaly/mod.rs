//! Anomaly models: the features of events, the Isolation Forest that scores them, the model that
//! joins the two, and how well scores match labels.

mod anomaly_settings;
mod error;
mod evaluation;
mod feature_matrix;
pub mod features;
pub mod forest;
mod model;
mod model_key;
mod scope;
mod training;
pub mod trust;
mod unusual_feature;

pub use anomaly_settings::AnomalySettings;
pub use error::ModelError;
pub use evaluation::{precision_at_k, roc_auc};
pub use feature_matrix::FeatureMatrix;
pub use forest::{ForestParams, IsolationForest};
pub use model::AnomalyModel;
pub use model_key::ModelKey;
pub use scope::ModelScope;
pub use training::{train, train_forest, TrainingSummary};
pub use unusual_feature::{FeatureValue, UnusualFeature, MAX_UNUSUAL_FEATURES, MIN_UNUSUAL_WEIGHT};
