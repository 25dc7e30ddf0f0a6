//! Anomaly models at the edges: training sessions, the rows they collect and the model versions
//! they produce, in Postgres (migrations/0011), and
//! the anomalies and trust they give (migrations/0012). The model itself is `portcullis_engine::anomaly`.

mod anomalies;
mod config;
mod error;
mod model_store;
mod models;
mod reloads;
mod sessions;
mod settings;
mod trust_scores;

pub use anomalies::{list_anomalies, AnomalyQuery, AnomalyRow};
pub use config::AnomalyConfig;
pub use error::TrainingError;
pub use model_store::PgModelStore;
pub use models::{current_model, list_models, CurrentModelError, ModelRow};
pub use reloads::{run_model_reloads, ModelDirectory};
pub use sessions::{
    active_session, close_session, list_sessions, session, start_session, stop_session, SessionRow,
    Stopped, MAX_TRAINING_ROWS,
};
pub use settings::{line_settings, list_settings, set_line_settings, SettingsRow};
pub use trust_scores::{list_trust, stored_trust, TrustQuery, TrustRow};
