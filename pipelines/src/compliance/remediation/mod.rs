//! Remediation over Kafka: the sender publishes pending actions (the outbox the findings writer
//! fills, and requests people make) as commands, and the results consumer finishes them with
//! what executors report.
//!
//! Commands go out at least once: one published but not yet marked sent when the engine stops
//! is published again, under the same `remediation_id`, which executors deduplicate on.
//! Results are applied once: only an action still `sent` takes one, so a redelivered result
//! changes nothing.

mod request;
mod results;
mod sender;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::records::TenantScope;

pub use request::{request_remediation, RequestError};
pub use results::{apply_result, run_results_consumer, Applied};
pub use sender::{run_sender, send_pending, SendError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RemediationRow {
    pub remediation_id: Uuid,
    pub violation_id: Uuid,
    pub open_period: i32,
    /// 0 for the action the violation's opening asked for, then 1, 2… for people's requests.
    pub request: i32,
    /// Who asked, for a request; none for the opening's own action.
    pub requested_by: Option<String>,
    pub tenant_id: String,
    pub pack: String,
    pub control_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub account: String,
    pub region: Option<String>,
    pub strategy: String,
    pub action: String,
    pub status: String,
    pub dry_run: Option<bool>,
    pub requested_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub finished_at: Option<DateTime<Utc>>,
    pub detail: Option<String>,
    pub executor: Option<String>,
}

/// Newest first: of the tenants in scope, with `status`, for one violation.
pub async fn remediations(
    pool: &PgPool,
    tenants: &TenantScope,
    status: Option<&str>,
    violation: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RemediationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM remediation_actions
         WHERE ($1::text[] IS NULL OR tenant_id = ANY($1)) AND ($2::text IS NULL OR status = $2)
           AND ($3::uuid IS NULL OR violation_id = $3)
         ORDER BY requested_at DESC, remediation_id LIMIT $4",
    )
    .bind(tenants.ids())
    .bind(status)
    .bind(violation)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Moves the violations among `ids` (each with the open period its action was for) whose
/// status is one of `from`, and that have not been re-opened since, to `to`, with a history
/// entry by `portcullis`.
pub(super) async fn move_violations(
    tx: &mut sqlx::PgConnection,
    ids: &[(Uuid, i32)],
    to: &str,
    from: &[&str],
    reason: &str,
) -> Result<(), sqlx::Error> {
    let (violations, periods): (Vec<Uuid>, Vec<i32>) = ids.iter().copied().unzip();
    sqlx::query(
        "WITH moved AS (
             UPDATE compliance_violations v SET
                 status = $2, reason = $4, changed_by = 'portcullis', updated_at = now(),
                 resolved_at = CASE WHEN $2 = 'resolved' THEN now() END,
                 last_resolved_at = CASE WHEN $2 = 'resolved' THEN now() ELSE last_resolved_at END
             FROM UNNEST($1::uuid[], $5::int[]) AS x(id, period)
             WHERE v.violation_id = x.id AND v.times_reopened = x.period AND v.status = ANY($3)
             RETURNING v.violation_id
         )
         INSERT INTO compliance_violation_history (violation_id, status, reason, changed_by)
         SELECT violation_id, $2, $4, 'portcullis' FROM moved",
    )
    .bind(&violations)
    .bind(to)
    .bind(from)
    .bind(reason)
    .bind(&periods)
    .execute(tx)
    .await?;
    Ok(())
}
