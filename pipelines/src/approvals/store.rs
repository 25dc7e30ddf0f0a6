//! The `approvals` table: open or reuse a request, answer it, expire it, read it.

use chrono::{DateTime, Utc};
use portcullis_engine::approval::{
    check_answerable, ApprovalError, ApprovalRequest, ApprovalStatus, Resolution,
};
use portcullis_engine::evidence::{ApprovalAnswered, Receipt};
use serde::Serialize;
use serde_json::Value as Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::ApprovalsConfig;
use crate::evidence::{append_receipts, ReceiptRow};
use crate::records::TenantScope;

/// Where an answered or expired request's id is announced (payload: the id), so every engine
/// can tell its waiting requesters and stream subscribers.
pub const APPROVALS_CHANNEL: &str = "portcullis_approvals";

const COLUMNS: &str = "approval_id, tenant_id, request_key, status, source, rule, principal, \
     action, resource, reasons, decision_id, policy_revision, policy_digest, requested_at, \
     expires_at, answered_at, answered_by, note, grant_until, agent_id";

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ApprovalRow {
    pub approval_id: Uuid,
    pub tenant_id: String,
    pub request_key: String,
    pub status: String,
    pub source: String,
    pub rule: String,
    pub principal: Option<String>,
    pub action: Option<String>,
    pub resource: String,
    pub reasons: Json,
    pub decision_id: Uuid,
    pub policy_revision: String,
    pub policy_digest: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub answered_by: Option<String>,
    pub note: Option<String>,
    pub grant_until: Option<DateTime<Utc>>,
    /// The agent whose event asked (told of the answer over MQTT); `None` for the API and
    /// gateway.
    pub agent_id: Option<String>,
}

impl ApprovalRow {
    pub fn status(&self) -> ApprovalStatus {
        // The table's CHECK allows only the four.
        ApprovalStatus::parse(&self.status).unwrap_or(ApprovalStatus::Pending)
    }
}

/// What a decision that needs approval found.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// An approval of this same request still holds: the request passes.
    Granted(ApprovalRow),
    /// A request waits for an approver (made now, or made earlier for the same request).
    Pending(ApprovalRow),
}

impl Opened {
    pub fn row(&self) -> &ApprovalRow {
        match self {
            Opened::Granted(row) | Opened::Pending(row) => row,
        }
    }

    pub fn is_granted(&self) -> bool {
        matches!(self, Opened::Granted(_))
    }
}

/// Finds an approval that lets this request through, or the request already waiting for one,
/// or opens a new request at `now`.
pub async fn open_request(
    pool: &PgPool,
    request: &ApprovalRequest,
    now: DateTime<Utc>,
    config: &ApprovalsConfig,
    receipts: bool,
) -> Result<Opened, sqlx::Error> {
    let key = request.key();
    // Twice at most: a pending request past its expiry that the sweep has not reached yet
    // holds the one-pending-per-request index; it is expired here, then the insert goes in.
    for _ in 0..2 {
        let found: Option<ApprovalRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals
             WHERE tenant_id = $1 AND request_key = $2
               AND ((status = 'approved' AND grant_until > $3)
                    OR (status = 'pending' AND expires_at > $3))
             ORDER BY status = 'approved' DESC, requested_at DESC
             LIMIT 1"
        )))
        .bind(&request.tenant)
        .bind(&key)
        .bind(now)
        .fetch_optional(pool)
        .await?;
        match found {
            Some(row) if row.status == "approved" => return Ok(Opened::Granted(row)),
            Some(row) => return Ok(Opened::Pending(row)),
            None => {}
        }
        let made: Option<ApprovalRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO approvals (approval_id, tenant_id, request_key, source, rule, principal,
                                    action, resource, reasons, decision_id, policy_revision,
                                    policy_digest, requested_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (tenant_id, request_key) WHERE status = 'pending' DO NOTHING
             RETURNING {COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(&request.tenant)
        .bind(&key)
        .bind(request.source)
        .bind(&request.rule)
        .bind(request.principal.as_deref())
        .bind(request.action.as_deref())
        .bind(&request.resource)
        .bind(&request.reasons)
        .bind(request.decision_id)
        .bind(&request.policy_revision)
        .bind(&request.policy_digest)
        .bind(now)
        .bind(now + config.pending())
        .fetch_optional(pool)
        .await?;
        if let Some(row) = made {
            return Ok(Opened::Pending(row));
        }
        expire_due(pool, now, receipts, Some((&request.tenant, &key))).await?;
    }
    Err(sqlx::Error::Protocol(
        "an approval request was neither found nor made; try again".into(),
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("no approval request {0}")]
    NotFound(Uuid),
    #[error(transparent)]
    Refused(#[from] ApprovalError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// An approver's answer to one request.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub id: Uuid,
    pub resolution: Resolution,
    /// Who answers: a token's name, a CLI user.
    pub by: &'a str,
    pub note: Option<&'a str>,
}

/// Answers a request, if it is pending and unexpired, and writes the answer's receipt in the
/// same transaction. `allowed` says whether the approver may answer the request's tenant: a
/// request they may not answer is reported as not found, so its existence is not told either.
pub async fn answer(
    pool: &PgPool,
    a: Answer<'_>,
    config: &ApprovalsConfig,
    receipts: bool,
    allowed: impl FnOnce(&str) -> bool,
) -> Result<ApprovalRow, AnswerError> {
    let Answer {
        id,
        resolution,
        by,
        note,
    } = a;
    let mut tx = pool.begin().await?;
    let row: Option<ApprovalRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approvals WHERE approval_id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let row = row
        .filter(|r| allowed(&r.tenant_id))
        .ok_or(AnswerError::NotFound(id))?;
    let now = Utc::now();
    check_answerable(&id.to_string(), row.status(), row.expires_at, now)?;
    let grant_until = (resolution == Resolution::Approve).then(|| now + config.grant());
    let answered: ApprovalRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE approvals
         SET status = $2, answered_at = $3, answered_by = $4, note = $5, grant_until = $6
         WHERE approval_id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(resolution.status().as_str())
    .bind(now)
    .bind(by)
    .bind(note)
    .bind(grant_until)
    .fetch_one(&mut *tx)
    .await?;
    if receipts {
        let receipt = answer_receipt(
            &answered,
            Some(by),
            resolution.as_str(),
            resolution == Resolution::Approve,
            note,
        );
        append_receipts(&mut tx, &[&receipt]).await?;
    }
    announce(&mut tx, &[id]).await?;
    tx.commit().await?;
    Ok(answered)
}

/// Expires every pending request past its expiry at `now` (or only the one of `only`:
/// tenant and request key), each with its receipt; returns them.
pub async fn expire_due(
    pool: &PgPool,
    now: DateTime<Utc>,
    receipts: bool,
    only: Option<(&str, &str)>,
) -> Result<Vec<ApprovalRow>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // SKIP LOCKED: a request being answered right now is left to its answer; two engines'
    // sweeps share the work instead of waiting on each other.
    let expired: Vec<ApprovalRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE approvals
         SET status = 'expired', answered_at = expires_at,
             note = 'nobody answered before it expired'
         WHERE approval_id IN (
             SELECT approval_id FROM approvals
             WHERE status = 'pending' AND expires_at <= $1
               AND ($2::text IS NULL OR (tenant_id = $2 AND request_key = $3))
             ORDER BY expires_at
             LIMIT 1000
             FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    )))
    .bind(now)
    .bind(only.map(|o| o.0))
    .bind(only.map(|o| o.1))
    .fetch_all(&mut *tx)
    .await?;
    if receipts && !expired.is_empty() {
        let made: Vec<ReceiptRow> = expired
            .iter()
            .map(|r| answer_receipt(r, None, "expire", false, r.note.as_deref()))
            .collect();
        append_receipts(&mut tx, &made.iter().collect::<Vec<_>>()).await?;
    }
    let ids: Vec<Uuid> = expired.iter().map(|r| r.approval_id).collect();
    announce(&mut tx, &ids).await?;
    tx.commit().await?;
    Ok(expired)
}

fn answer_receipt(
    row: &ApprovalRow,
    by: Option<&str>,
    action: &'static str,
    approved: bool,
    note: Option<&str>,
) -> ReceiptRow {
    ReceiptRow::of(&Receipt::of_approval(&ApprovalAnswered {
        tenant: &row.tenant_id,
        decision_id: Uuid::now_v7(),
        approval_id: row.approval_id,
        approver: by,
        action,
        approved,
        note,
        rule: &row.rule,
        policy_revision: &row.policy_revision,
        policy_digest: &row.policy_digest,
        request_key: &row.request_key,
        // The expiry, not the sweep's late arrival, is when an expired request was decided.
        decided_at: row.answered_at.unwrap_or_else(Utc::now),
    }))
}

/// Announced at commit (NOTIFY is transactional).
async fn announce(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, id::text) FROM UNNEST($2::uuid[]) AS id")
        .bind(APPROVALS_CHANNEL)
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Agents' requests answered or expired after `since`, oldest first (at most `limit`).
pub async fn answered_for_agents_since(
    pool: &PgPool,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ApprovalRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approvals
         WHERE source = 'agent' AND answered_at > $1 ORDER BY answered_at LIMIT $2"
    )))
    .bind(since)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<ApprovalRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approvals WHERE approval_id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A listing's filter.
#[derive(Debug, Clone)]
pub struct ApprovalQuery {
    pub tenants: TenantScope,
    pub status: Option<ApprovalStatus>,
    pub principal: Option<String>,
    pub limit: i64,
}

/// Newest first. A pending request past its expiry is listed as pending until the sweep
/// marks it (within `approvals.sweep_interval_ms`).
pub async fn list(pool: &PgPool, q: &ApprovalQuery) -> Result<Vec<ApprovalRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approvals
         WHERE ($1::text[] IS NULL OR tenant_id = ANY($1))
           AND ($2::text IS NULL OR status = $2)
           AND ($3::text IS NULL OR principal = $3)
         ORDER BY requested_at DESC
         LIMIT $4"
    )))
    .bind(q.tenants.ids())
    .bind(q.status.map(|s| s.as_str()))
    .bind(q.principal.as_deref())
    .bind(q.limit)
    .fetch_all(pool)
    .await
}
