//! The anomaly-model actors' store: the latest model version, the active session, the settings
//! and the stored trust of a tenant and scope, from Postgres.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use portcullis_actors::{ModelState, ModelStore, ModelStoreError, StoredTrust};
use portcullis_engine::anomaly::features::{client_family, PastEvent};
use portcullis_engine::anomaly::{ModelKey, ModelScope};
use portcullis_engine::EventKind;
use sqlx::PgPool;
use tracing::warn;

use super::models::{current_model, CurrentModelError};
use super::sessions::active_session;
use super::settings::line_settings;
use super::trust_scores::stored_trust;

/// How far back a model line's principals are remembered when its actor is activated, and how
/// many of the most recent events that covers at most.
pub const HISTORY_DAYS: i32 = 7;
pub const HISTORY_EVENTS: i64 = 100_000;

pub struct PgModelStore {
    pool: PgPool,
}

/// An event of the line's history, as read back.
#[derive(sqlx::FromRow)]
struct PastRow {
    principal: String,
    event_time: DateTime<Utc>,
    action: String,
    source_ip: Option<String>,
    user_agent: Option<String>,
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
            let settings = line_settings(&pool, &key.tenant, key.scope)
                .await
                .map_err(db)?;
            Ok(ModelState {
                model,
                session,
                settings,
            })
        }
    }

    fn trust(
        &self,
        key: ModelKey,
    ) -> impl std::future::Future<Output = Result<StoredTrust, ModelStoreError>> + Send + 'static
    {
        let pool = self.pool.clone();
        async move {
            stored_trust(&pool, &key.tenant, key.scope)
                .await
                .map_err(|e| ModelStoreError(e.to_string()))
        }
    }

    fn history(
        &self,
        key: ModelKey,
    ) -> impl std::future::Future<Output = Result<Vec<PastEvent>, ModelStoreError>> + Send + 'static
    {
        let pool = self.pool.clone();
        async move {
            let kind = match key.scope {
                ModelScope::Cloudtrail => EventKind::Cloudtrail,
                ModelScope::Device => EventKind::Device,
            };
            let rows: Vec<PastRow> = sqlx::query_as(
                "SELECT principal, event_time, action, source_ip, user_agent FROM (
                         SELECT principal, event_time, action, source_ip,
                                raw ->> 'userAgent' AS user_agent
                         FROM events
                         WHERE tenant_id = $1 AND kind = $2
                           AND event_time > now() - make_interval(days => $3)
                         ORDER BY event_time DESC LIMIT $4) recent
                     ORDER BY event_time",
            )
            .bind(key.tenant.as_str())
            .bind(kind.as_str())
            .bind(HISTORY_DAYS)
            .bind(HISTORY_EVENTS)
            .fetch_all(&pool)
            .await
            .map_err(|e| ModelStoreError(e.to_string()))?;
            Ok(rows
                .into_iter()
                .map(|r| PastEvent {
                    principal: r.principal,
                    time: r.event_time,
                    action: r.action,
                    address: r.source_ip,
                    client: (key.scope == ModelScope::Cloudtrail)
                        .then(|| client_family(r.user_agent.as_deref()).to_owned()),
                })
                .collect())
        }
    }
}
