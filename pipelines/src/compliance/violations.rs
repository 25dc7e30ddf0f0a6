//! Reading violations, their evidence and history, and moving them through their lifecycle.

use chrono::{DateTime, Utc};
use portcullis_engine::compliance::{LifecycleError, StatusChange, ViolationStatus};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::records::TenantScope;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ViolationRow {
    pub violation_id: Uuid,
    pub tenant_id: String,
    pub pack: String,
    pub pack_version: String,
    pub control_id: String,
    pub title: String,
    pub severity: String,
    pub resource_type: String,
    pub resource_id: String,
    pub status: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub occurrences: i64,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub times_reopened: i32,
    pub resolved_at: Option<DateTime<Utc>>,
    pub suppressed_until: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub changed_by: Option<String>,
}

const COLUMNS: &str = "violation_id, tenant_id, pack, pack_version, control_id, title, severity,
    resource_type, resource_id, status, first_seen, last_seen, occurrences, opened_at, updated_at,
    times_reopened, resolved_at, suppressed_until, reason, changed_by";

/// An event that raised or joined a violation.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct FindingRow {
    pub event_id: String,
    pub event_time: DateTime<Utc>,
    pub decision_id: Uuid,
    pub principal: String,
    pub action: String,
    pub succeeded: bool,
    pub pack_version: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HistoryRow {
    pub at: DateTime<Utc>,
    pub status: String,
    pub reason: Option<String>,
    pub changed_by: String,
}

#[derive(Debug, Clone)]
pub struct ViolationQuery {
    pub tenants: TenantScope,
    pub status: Option<ViolationStatus>,
    /// Open, acknowledged, remediating, and suppressed past the end of the suppression.
    pub active_only: bool,
    pub severity: Option<String>,
    pub pack: Option<String>,
    pub control: Option<String>,
    pub resource: Option<String>,
    pub limit: i64,
}

/// Newest activity first; the most severe first among equals.
pub async fn list(pool: &PgPool, q: &ViolationQuery) -> Result<Vec<ViolationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM compliance_violations
         WHERE ($1::text[] IS NULL OR tenant_id = ANY($1))
           AND ($2::text IS NULL OR status = $2)
           AND (NOT $3 OR status IN ('open', 'acknowledged', 'remediating')
                OR (status = 'suppressed' AND suppressed_until <= now()))
           AND ($4::text IS NULL OR severity = $4)
           AND ($5::text IS NULL OR pack = $5)
           AND ($6::text IS NULL OR control_id = $6)
           AND ($7::text IS NULL OR resource_id = $7)
         ORDER BY last_seen DESC,
                  array_position(ARRAY['critical', 'high', 'medium', 'low'], severity),
                  violation_id
         LIMIT $8"
    )))
    .bind(q.tenants.ids())
    .bind(q.status.map(ViolationStatus::as_str))
    .bind(q.active_only)
    .bind(q.severity.as_deref())
    .bind(q.pack.as_deref())
    .bind(q.control.as_deref())
    .bind(q.resource.as_deref())
    .bind(q.limit)
    .fetch_all(pool)
    .await
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<ViolationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM compliance_violations WHERE violation_id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Violation `id`, locked until the end of the transaction: its changes are made one at a time.
pub(crate) async fn lock(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
) -> Result<Option<ViolationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM compliance_violations WHERE violation_id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(tx)
    .await
}

/// Adds a line to violation `id`'s history: its status (now), why, and who.
pub(crate) async fn record_history(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    status: &str,
    reason: Option<&str>,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO compliance_violation_history (violation_id, status, reason, changed_by)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(status)
    .bind(reason)
    .bind(by)
    .execute(tx)
    .await?;
    Ok(())
}

/// The events that raised or joined violation `id`, newest first.
pub async fn evidence(pool: &PgPool, id: Uuid, limit: i64) -> Result<Vec<FindingRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_id, event_time, decision_id, principal, action, succeeded, pack_version
         FROM compliance_findings WHERE violation_id = $1
         ORDER BY event_time DESC, event_id LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn history(pool: &PgPool, id: Uuid) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at, status, reason, changed_by FROM compliance_violation_history
         WHERE violation_id = $1 ORDER BY at, status",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no violation {0}")]
    NotFound(Uuid),
    #[error(transparent)]
    Refused(#[from] LifecycleError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Moves violation `id` as `change` asks, on behalf of `by`, if its lifecycle allows it from
/// where the violation stands now; recorded in its history. `may_change` sees the row first
/// (the caller's permission on its tenant): `false` is answered as not found.
pub async fn change_status(
    pool: &PgPool,
    id: Uuid,
    change: &StatusChange,
    by: &str,
    may_change: impl FnOnce(&ViolationRow) -> bool,
) -> Result<ViolationRow, ChangeError> {
    let mut tx = pool.begin().await?;
    let row = lock(&mut tx, id)
        .await?
        .filter(may_change)
        .ok_or(ChangeError::NotFound(id))?;
    let from = ViolationStatus::parse(&row.status).unwrap_or(ViolationStatus::Open);
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *tx)
        .await?;
    change.check(from, now)?;
    let to = change.to;
    let updated: ViolationRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE compliance_violations SET
             status = $2,
             reason = $3,
             changed_by = $4,
             suppressed_until = $5,
             resolved_at = CASE WHEN $2 = 'resolved' THEN now() END,
             last_resolved_at = CASE WHEN $2 = 'resolved' THEN now() ELSE last_resolved_at END,
             opened_at = CASE WHEN $2 = 'open' AND status IN ('resolved', 'suppressed')
                              THEN now() ELSE opened_at END,
             times_reopened = times_reopened
                 + CASE WHEN $2 = 'open' AND status = 'resolved' THEN 1 ELSE 0 END,
             updated_at = now()
         WHERE violation_id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(to.as_str())
    .bind(change.reason.as_deref())
    .bind(by)
    .bind(change.until)
    .fetch_one(&mut *tx)
    .await?;
    record_history(&mut tx, id, to.as_str(), change.reason.as_deref(), by).await?;
    tx.commit().await?;
    Ok(updated)
}
