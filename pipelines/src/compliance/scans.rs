//! Scans: a framework judged for a tenant from its violations, stored with its scores for the
//! trend.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use portcullis_engine::compliance::{
    framework_controls, ControlResult, ControlStatus, PackManifest, ScanSummary,
};
use portcullis_engine::TenantId;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::records::TenantScope;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ScanRow {
    pub scan_id: Uuid,
    pub tenant_id: String,
    pub framework: String,
    pub framework_title: String,
    pub period_from: DateTime<Utc>,
    pub period_to: DateTime<Utc>,
    pub scanned_at: DateTime<Utc>,
    pub requested_by: String,
    pub passed: i32,
    pub failed: i32,
    pub muted: i32,
    pub pass_rate: Option<f64>,
    pub score: Option<f64>,
    pub controls: Json<Vec<ControlResult>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("tenant {tenant} enables no pack with controls in framework {framework:?} (its packs map to: {known})")]
    UnknownFramework {
        tenant: String,
        framework: String,
        known: String,
    },
    #[error("a scan's period runs forwards: from {from} to {to}")]
    BadPeriod {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Frameworks the packs map to: id → title.
pub fn frameworks_of(packs: &[PackManifest]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for p in packs {
        for f in &p.frameworks {
            if !out.iter().any(|(id, _)| *id == f.id) {
                out.push((f.id.clone(), f.title.clone()));
            }
        }
    }
    out
}

/// Judges `framework` for `tenant` from its enabled `packs` and its violations now, counting
/// the findings of the period `[from, to]`; stores the scan and returns it.
pub async fn run_scan(
    pool: &PgPool,
    tenant: &TenantId,
    packs: &[PackManifest],
    framework: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    by: &str,
) -> Result<ScanRow, ScanError> {
    if from > to {
        return Err(ScanError::BadPeriod { from, to });
    }
    let known = frameworks_of(packs);
    let Some((_, title)) = known.iter().find(|(id, _)| id == framework) else {
        return Err(ScanError::UnknownFramework {
            tenant: tenant.to_string(),
            framework: framework.to_owned(),
            known: match known.is_empty() {
                true => "nothing; enable packs in metadata.json".into(),
                false => known
                    .iter()
                    .map(|(id, _)| id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        });
    };
    let counts: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        // The period's findings counted per violation in one pass (a hash aggregate), then
        // joined: a count per violation looked up one by one costs several times more.
        "WITH f AS (
             SELECT violation_id, count(*) AS n FROM compliance_findings
             WHERE tenant_id = $1 AND event_time BETWEEN $2 AND $3 AND violation_id IS NOT NULL
             GROUP BY violation_id
         )
         SELECT v.pack, v.control_id,
                count(*) FILTER (WHERE (v.status IN ('open', 'acknowledged', 'remediating')
                                        OR (v.status = 'suppressed' AND v.suppressed_until <= now()))
                                   AND v.first_seen <= $3),
                count(*) FILTER (WHERE v.status = 'suppressed' AND v.suppressed_until > now()),
                coalesce(sum(f.n), 0)::bigint
         FROM compliance_violations v LEFT JOIN f USING (violation_id)
         WHERE v.tenant_id = $1
         GROUP BY v.pack, v.control_id",
    )
    .bind(tenant.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let by_control: HashMap<(&str, &str), (i64, i64, i64)> = counts
        .iter()
        .map(|(p, c, a, m, n)| ((p.as_str(), c.as_str()), (*a, *m, *n)))
        .collect();
    let results: Vec<ControlResult> = framework_controls(packs, framework)
        .into_iter()
        .map(|(pack, control, requirement)| {
            let (active, muted, findings) = by_control
                .get(&(pack.name.as_str(), control.id.as_str()))
                .copied()
                .unwrap_or_default();
            ControlResult {
                pack: pack.name.clone(),
                pack_version: pack.version.clone(),
                control_id: control.id.clone(),
                requirement: requirement.to_owned(),
                title: control.title.clone(),
                severity: control.severity,
                status: ControlStatus::of(active, muted),
                failing_resources: active,
                muted_resources: muted,
                findings_in_period: findings,
                resource_type: control.resource.kind.clone(),
                remediation: control.remediation.text.clone(),
            }
        })
        .collect();
    let summary = ScanSummary::of(&results);
    let row: ScanRow = sqlx::query_as(
        "INSERT INTO compliance_scans
             (tenant_id, framework, framework_title, period_from, period_to, requested_by,
              passed, failed, muted, pass_rate, score, controls)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING *",
    )
    .bind(tenant.as_str())
    .bind(framework)
    .bind(title)
    .bind(from)
    .bind(to)
    .bind(by)
    .bind(i32::try_from(summary.passed).unwrap_or(i32::MAX))
    .bind(i32::try_from(summary.failed).unwrap_or(i32::MAX))
    .bind(i32::try_from(summary.muted).unwrap_or(i32::MAX))
    .bind(summary.pass_rate)
    .bind(summary.score)
    .bind(Json(&results))
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// Scans, newest first: the trend of each (tenant, framework).
pub async fn scans(
    pool: &PgPool,
    tenants: &TenantScope,
    framework: Option<&str>,
    limit: i64,
) -> Result<Vec<ScanRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM compliance_scans
         WHERE ($1::text[] IS NULL OR tenant_id = ANY($1)) AND ($2::text IS NULL OR framework = $2)
         ORDER BY scanned_at DESC, scan_id LIMIT $3",
    )
    .bind(tenants.ids())
    .bind(framework)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn scan(pool: &PgPool, id: Uuid) -> Result<Option<ScanRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM compliance_scans WHERE scan_id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}
