//! Where an anomaly-model actor's state comes from: Postgres, implemented at the edges
//! (`pipelines`), so the actor holds only the model, the session and the principals' behaviour.

use std::future::Future;
use std::sync::Arc;

use portcullis_engine::anomaly::features::PastEvent;
use portcullis_engine::anomaly::trust::TrustState;
use portcullis_engine::anomaly::{AnomalyModel, AnomalySettings, ModelKey};
use uuid::Uuid;

/// What a model line is doing now.
#[derive(Debug, Clone, Default)]
pub struct ModelState {
    /// The latest model version and the model, if one was trained.
    pub model: Option<(i32, Arc<AnomalyModel>)>,
    /// The active training session, if there is one: events are collected for it.
    pub session: Option<Uuid>,
    /// The line's threshold and trust half-life.
    pub settings: AnomalySettings,
}

/// A line's stored trust: each subject's state with the change it was (`TrustChange::seq`),
/// and the anomalous events it counted, oldest first (the most recent ones).
#[derive(Debug, Clone, Default)]
pub struct StoredTrust {
    pub subjects: Vec<(String, TrustState, i64)>,
    pub counted: Vec<String>,
    /// The line's highest `seq` stored, of any subject.
    pub last_seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot load the anomaly model: {0}")]
pub struct ModelStoreError(pub String);

/// The model store, as anomaly-model actors use it. Futures are `'static`: implementations
/// clone what they need (a pool).
pub trait ModelStore: Send + Sync + 'static {
    /// The latest model and the active session.
    fn load(
        &self,
        key: ModelKey,
    ) -> impl Future<Output = Result<ModelState, ModelStoreError>> + Send + 'static;

    /// The line's subjects' stored trust, to resume from on activation.
    fn trust(
        &self,
        key: ModelKey,
    ) -> impl Future<Output = Result<StoredTrust, ModelStoreError>> + Send + 'static;

    /// Recent events of the model line, oldest first, to warm its principals' behaviour up on
    /// activation.
    fn history(
        &self,
        key: ModelKey,
    ) -> impl Future<Output = Result<Vec<PastEvent>, ModelStoreError>> + Send + 'static;
}
