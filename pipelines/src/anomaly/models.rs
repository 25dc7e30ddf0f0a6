//! Anomaly model versions in Postgres: written when a session is stopped, read by whoever
//! scores or lists them.

use chrono::{DateTime, Utc};
use portcullis_engine::anomaly::features::{schema, FEATURES_VERSION};
use portcullis_engine::anomaly::{
    AnomalyModel, ForestParams, ModelError, ModelScope, TrainingSummary,
};
use portcullis_engine::TenantId;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::types::Json;
// The formatted SQL only splices constant column lists; every value is bound.
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::records::TenantScope;

/// A model version as listed: everything but the forest itself.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ModelRow {
    pub tenant_id: String,
    pub scope: String,
    pub version: i32,
    pub session_id: Uuid,
    pub params: Value,
    pub feature_schema: Value,
    pub summary: Value,
    pub trained_at: DateTime<Utc>,
    pub trained_by: String,
}

const COLUMNS: &str =
    "tenant_id, scope, version, session_id, params, feature_schema, summary, trained_at, trained_by";

/// Stores `model` as the next version of `tenant`'s `scope` model.
#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_model(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    scope: ModelScope,
    session: Uuid,
    params: ForestParams,
    model: &AnomalyModel,
    summary: &TrainingSummary,
    by: &str,
) -> Result<ModelRow, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO anomaly_models
             (tenant_id, scope, version, session_id, params, feature_schema, model, summary, trained_by)
         SELECT $1, $2, COALESCE(max(version), 0) + 1, $3, $4, $5, $6, $7, $8
         FROM anomaly_models WHERE tenant_id = $1 AND scope = $2
         RETURNING {COLUMNS}"
    )))
    .bind(tenant.as_str())
    .bind(scope.as_str())
    .bind(session)
    .bind(Json(params))
    .bind(json!({ "version": FEATURES_VERSION, "features": schema(scope) }))
    .bind(Json(model))
    .bind(Json(summary))
    .bind(by)
    .fetch_one(&mut **tx)
    .await
}

/// Model versions of the tenants in `tenants`, newest first.
pub async fn list_models(
    pool: &PgPool,
    tenants: &TenantScope,
    limit: i64,
) -> Result<Vec<ModelRow>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM anomaly_models WHERE ($1::text[] IS NULL OR tenant_id = ANY($1))
         ORDER BY trained_at DESC, tenant_id, scope LIMIT $2"
    )))
    .bind(tenants.ids())
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The latest version of `tenant`'s `scope` model, checked before use.
pub async fn current_model(
    pool: &PgPool,
    tenant: &TenantId,
    scope: ModelScope,
) -> Result<Option<(i32, AnomalyModel)>, CurrentModelError> {
    let row: Option<(i32, Json<AnomalyModel>)> = sqlx::query_as(
        "SELECT version, model FROM anomaly_models WHERE tenant_id = $1 AND scope = $2
         ORDER BY version DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(scope.as_str())
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(None),
        Some((version, Json(model))) => {
            model.validate()?;
            Ok(Some((version, model)))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CurrentModelError {
    #[error("the stored model cannot be used: {0}")]
    Invalid(#[from] ModelError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}
