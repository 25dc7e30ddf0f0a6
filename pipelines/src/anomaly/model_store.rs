//! The anomaly-model actors' store: the latest model version and the active session of a
//! tenant and scope, from Postgres.

use std::sync::Arc;

use portcullis_actors::{ModelState, ModelStore, ModelStoreError};
use portcullis_engine::anomaly::ModelKey;
use sqlx::PgPool;
use tracing::warn;

use super::models::{current_model, CurrentModelError};
use super::sessions::active_session;

pub struct PgModelStore {
    pool: PgPool,
}

impl PgModelStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl ModelStore for PgModelStore {
    fn load(
        &self,
        key: ModelKey,
    ) -> impl std::future::Future<Output = Result<ModelState, ModelStoreError>> + Send + 'static
    {
        let pool = self.pool.clone();
        async move {
            let db = |e: sqlx::Error| ModelStoreError(e.to_string());
            let model = match current_model(&pool, &key.tenant, key.scope).await {
                Ok(model) => model.map(|(version, model)| (version, Arc::new(model))),
                // A model this engine cannot use scores nothing, rather than stopping the
                // tenant's events: said once per load, and fixed by training again.
                Err(CurrentModelError::Invalid(e)) => {
                    warn!(model = %key, error = %e, "the latest anomaly model is not used");
                    None
                }
                Err(CurrentModelError::Db(e)) => return Err(db(e)),
            };
            let session = active_session(&pool, &key.tenant, key.scope)
                .await
                .map_err(db)?
                .map(|s| s.session_id);
            Ok(ModelState { model, session })
        }
    }
}
