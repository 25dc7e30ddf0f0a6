//! Training sessions in Postgres: start, stop (which trains a model version), force-close,
//! and what they are doing. The one-active-session rule is a unique index, so it holds across
//! crashes, restarts and several engines; a session's state lives only in its row.

use chrono::{DateTime, Utc};
use portcullis_engine::anomaly::features::RawFeatures;
use portcullis_engine::anomaly::{train, ForestParams, ModelScope};
use portcullis_engine::TenantId;
use serde::Serialize;
// The formatted SQL only splices constant column lists; every value is bound.
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::records::TenantScope;
use crate::sinks::postgres::error_codes::{foreign_key_violation, unique_violation};

use super::error::TrainingError;
use super::models::{insert_model, ModelRow};

/// Rows read to train a model, at most: a forest of 100 trees draws 25,600 rows; a larger pool
/// changes nothing but the time spent reading it.
pub const MAX_TRAINING_ROWS: i64 = 100_000;

/// A session as listed and shown.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SessionRow {
    pub session_id: Uuid,
    pub tenant_id: String,
    pub scope: String,
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub started_by: String,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
    pub model_version: Option<i32>,
    pub failure: Option<String>,
    /// Events collected so far.
    pub rows_collected: i64,
}

const SELECT: &str = "SELECT s.session_id, s.tenant_id, s.scope, s.state, s.started_at,
        s.started_by, s.ended_at, s.ended_by, s.model_version, s.failure,
        (SELECT count(*) FROM training_rows r WHERE r.session_id = s.session_id) AS rows_collected
    FROM training_sessions s";

/// Starts a session for `tenant`'s `scope`, refused if one is active.
pub async fn start_session(
    pool: &PgPool,
    tenant: &TenantId,
    scope: ModelScope,
    by: &str,
) -> Result<SessionRow, TrainingError> {
    let id = Uuid::now_v7();
    let inserted = sqlx::query(
        "INSERT INTO training_sessions (session_id, tenant_id, scope, started_by)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(tenant.as_str())
    .bind(scope.as_str())
    .bind(by)
    .execute(pool)
    .await;
    match inserted {
        Ok(_) => Ok(session(pool, id).await?.expect("the session just inserted")),
        Err(e) if unique_violation(&e) => {
            let active = active_session(pool, tenant, scope).await?;
            Err(TrainingError::AlreadyActive {
                tenant: tenant.to_string(),
                scope,
                // It may have been stopped in between; the caller can try again.
                session: active.map_or(Uuid::nil(), |s| s.session_id),
            })
        }
        Err(e) if foreign_key_violation(&e) => {
            Err(TrainingError::UnknownTenant(tenant.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The active session of `tenant`'s `scope`, if there is one.
pub async fn active_session(
    pool: &PgPool,
    tenant: &TenantId,
    scope: ModelScope,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "{SELECT} WHERE s.tenant_id = $1 AND s.scope = $2 AND s.state = 'active'"
    )))
    .bind(tenant.as_str())
    .bind(scope.as_str())
    .fetch_optional(pool)
    .await
}

pub async fn session(pool: &PgPool, id: Uuid) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!("{SELECT} WHERE s.session_id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Sessions of the tenants in `tenants`, newest first.
pub async fn list_sessions(
    pool: &PgPool,
    tenants: &TenantScope,
    limit: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "{SELECT} WHERE ($1::text[] IS NULL OR s.tenant_id = ANY($1))
         ORDER BY s.started_at DESC, s.session_id DESC LIMIT $2"
    )))
    .bind(tenants.ids())
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// What stopping a session did.
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    pub session: SessionRow,
    /// The model version trained, or `None` if training failed (the session's `failure` says
    /// why, e.g. too few rows).
    pub model: Option<ModelRow>,
}

/// Stops the active session of `tenant`'s `scope` and trains the next model version from its
/// rows, in one transaction: a crash part-way leaves the session active, to be stopped again.
/// Training that cannot succeed (too few rows) ends the session as failed, with the reason.
pub async fn stop_session(
    pool: &PgPool,
    tenant: &TenantId,
    scope: ModelScope,
    params: ForestParams,
    by: &str,
) -> Result<Stopped, TrainingError> {
    let mut tx = pool.begin().await?;
    let id = lock_active(&mut tx, tenant, scope).await?;
    let rows: Vec<(Vec<String>, Vec<f64>)> = sqlx::query_as(
        "SELECT categorical, numeric FROM training_rows WHERE session_id = $1
         ORDER BY md5(event_id) LIMIT $2",
    )
    .bind(id)
    .bind(MAX_TRAINING_ROWS)
    .fetch_all(&mut *tx)
    .await?;
    let trained = tokio::task::spawn_blocking(move || {
        let rows: Vec<RawFeatures> = rows
            .into_iter()
            .map(|(categorical, numeric)| RawFeatures {
                categorical,
                numeric,
            })
            .collect();
        train(params, scope, &rows)
    })
    .await
    .expect("training does not panic");
    let model = match trained {
        Ok((forest, summary)) => {
            let model =
                insert_model(&mut tx, tenant, scope, id, params, &forest, &summary, by).await?;
            sqlx::query(
                "UPDATE training_sessions SET state = 'trained', ended_at = now(), ended_by = $2,
                 model_version = $3 WHERE session_id = $1",
            )
            .bind(id)
            .bind(by)
            .bind(model.version)
            .execute(&mut *tx)
            .await?;
            Some(model)
        }
        Err(e) => {
            sqlx::query(
                "UPDATE training_sessions SET state = 'failed', ended_at = now(), ended_by = $2,
                 failure = $3 WHERE session_id = $1",
            )
            .bind(id)
            .bind(by)
            .bind(e.to_string())
            .execute(&mut *tx)
            .await?;
            None
        }
    };
    tx.commit().await?;
    let session = session(pool, id).await?.expect("the session just stopped");
    Ok(Stopped { session, model })
}

/// Ends the active session of `tenant`'s `scope` without training: for a session nobody wants
/// any more, or one left behind by a tool that lost track of it. Its rows are kept.
pub async fn close_session(
    pool: &PgPool,
    tenant: &TenantId,
    scope: ModelScope,
    by: &str,
) -> Result<SessionRow, TrainingError> {
    let mut tx = pool.begin().await?;
    let id = lock_active(&mut tx, tenant, scope).await?;
    sqlx::query(
        "UPDATE training_sessions SET state = 'closed', ended_at = now(), ended_by = $2
         WHERE session_id = $1",
    )
    .bind(id)
    .bind(by)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(session(pool, id).await?.expect("the session just closed"))
}

/// The active session's id, locked until the transaction ends, so that two stops (or a stop
/// and a close) cannot both end it.
async fn lock_active(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    scope: ModelScope,
) -> Result<Uuid, TrainingError> {
    sqlx::query_scalar(
        "SELECT session_id FROM training_sessions
         WHERE tenant_id = $1 AND scope = $2 AND state = 'active' FOR UPDATE",
    )
    .bind(tenant.as_str())
    .bind(scope.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| TrainingError::NoneActive {
        tenant: tenant.to_string(),
        scope,
    })
}
