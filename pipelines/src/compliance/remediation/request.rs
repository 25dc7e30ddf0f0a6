//! A person asks for a new remediation command for a violation: after a dry run (once
//! `dry_run` is off), or after an executor failed for a reason since fixed. The violation's
//! opening asks by itself only once per open period.

use portcullis_engine::compliance::{
    remediation_request, PackManifest, RequestRefused, ViolationStatus,
};
use sqlx::PgPool;
use uuid::Uuid;

use super::RemediationRow;
use crate::compliance::violations::{lock, record_history};
use crate::compliance::ViolationRow;

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no violation {0}")]
    NotFound(Uuid),
    #[error(transparent)]
    Refused(#[from] RequestRefused),
    #[error("no event of violation {0} is left to tell its account and region")]
    NoPlace(Uuid),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Queues a new action for violation `id` on behalf of `by`, as its control in `packs` (the
/// packs its tenant serves now) says, if the violation is active and no action of its open
/// period still waits for a result. `may_request` sees the row first (the caller's permission on its
/// tenant): `false` is answered as not found. The sender publishes it like any other.
pub async fn request_remediation(
    pool: &PgPool,
    id: Uuid,
    packs: &[PackManifest],
    by: &str,
    may_request: impl FnOnce(&ViolationRow) -> bool,
) -> Result<RemediationRow, RequestError> {
    let mut tx = pool.begin().await?;
    // Under the violation's lock: two requests at once make one action.
    let v = lock(&mut tx, id)
        .await?
        .filter(may_request)
        .ok_or(RequestError::NotFound(id))?;
    // Only this open period's: an action of an earlier one no longer moves the violation
    // (and a `sent` one without a result ends by `compliance.result_timeout_secs`).
    let in_flight: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT remediation_id, status FROM remediation_actions
         WHERE violation_id = $1 AND open_period = $2 AND status IN ('pending', 'sent')
         ORDER BY requested_at LIMIT 1",
    )
    .bind(id)
    .bind(v.times_reopened)
    .fetch_optional(&mut *tx)
    .await?;
    let control = packs
        .iter()
        .find(|p| p.name == v.pack)
        .and_then(|p| p.control(&v.control_id));
    let status = ViolationStatus::parse(&v.status).unwrap_or(ViolationStatus::Open);
    let asked = remediation_request(
        status,
        &v.pack,
        &v.control_id,
        control,
        in_flight.as_ref().map(|(id, s)| (*id, s.as_str())),
    )?;
    // Where the resource lives: as its latest evidence event says, else as its last action did
    // (the event may have aged out of `events`).
    let place: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT account, region FROM (
             (SELECT 0 AS choice, e.account, e.raw->>'awsRegion' AS region
              FROM compliance_findings f
              JOIN events e ON (e.tenant_id, e.event_id, e.event_time)
                             = (f.tenant_id, f.event_id, f.event_time)
              WHERE f.violation_id = $1
              ORDER BY f.event_time DESC LIMIT 1)
             UNION ALL
             (SELECT 1, account, region FROM remediation_actions
              WHERE violation_id = $1 ORDER BY requested_at DESC LIMIT 1)
         ) places ORDER BY choice LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let (account, region) = place.ok_or(RequestError::NoPlace(id))?;
    let row: RemediationRow = sqlx::query_as(
        "INSERT INTO remediation_actions
             (violation_id, open_period, request, requested_by, tenant_id, pack, control_id,
              resource_type, resource_id, account, region, strategy, action)
         SELECT $1, $2,
                coalesce((SELECT max(request) FROM remediation_actions
                          WHERE violation_id = $1 AND open_period = $2), 0) + 1,
                $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
         RETURNING *",
    )
    .bind(id)
    .bind(v.times_reopened)
    .bind(by)
    .bind(&v.tenant_id)
    .bind(&v.pack)
    .bind(&v.control_id)
    .bind(&v.resource_type)
    .bind(&v.resource_id)
    .bind(account)
    .bind(region)
    .bind(asked.strategy.as_str())
    .bind(&asked.action)
    .fetch_one(&mut *tx)
    .await?;
    // In the violation's history, so its timeline shows who asked; its status stays.
    let why = format!("remediation asked again: {}", asked.action);
    record_history(&mut tx, id, &v.status, Some(&why), by).await?;
    tx.commit().await?;
    Ok(row)
}
