//! Where an anomaly-model actor's state comes from: Postgres, implemented at the edges
//! (`pipelines`), so the actor holds only the model, the session and the principals' behaviour.

use std::future::Future;
use std::sync::Arc;

use portcullis_engine::anomaly::features::PastEvent;
use portcullis_engine::anomaly::{AnomalyModel, ModelKey};
use uuid::Uuid;

/// What a model line is doing now.
#[derive(Debug, Clone, Default)]
pub struct ModelState {
    /// The latest model version and the model, if one was trained.
    pub model: Option<(i32, Arc<AnomalyModel>)>,
    /// The active training session, if there is one: events are collected for it.
    pub session: Option<Uuid>,
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

    /// Recent events of the model line, oldest first, to warm its principals' behaviour up on
    /// activation.
    fn history(
        &self,
        key: ModelKey,
    ) -> impl Future<Output = Result<Vec<PastEvent>, ModelStoreError>> + Send + 'static;
}
