//! Reading the resource inventory, with each resource's violations and drift.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::records::TenantScope;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ResourceRow {
    pub tenant_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub account: String,
    pub region: Option<String>,
    pub state: String,
    pub first_seen: DateTime<Utc>,
    pub last_change: String,
    pub last_changed_at: DateTime<Utc>,
    pub last_changed_by: String,
    pub last_event_id: String,
    pub last_event_name: String,
    /// Its violations still open, acknowledged or being remediated.
    pub active_violations: i64,
    /// When it was last made compliant: its latest violation resolution (kept when the
    /// violation re-opens).
    pub compliant_since: Option<DateTime<Utc>>,
    /// Changed after it was last made compliant.
    pub drifted: bool,
}

#[derive(Debug, Clone)]
pub struct ResourceQuery {
    pub tenants: TenantScope,
    pub resource_type: Option<String>,
    pub state: Option<String>,
    pub drifted_only: bool,
    pub limit: i64,
}

/// Most recently changed first.
pub async fn resources(pool: &PgPool, q: &ResourceQuery) -> Result<Vec<ResourceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.*, coalesce(v.active, 0) AS active_violations, v.compliant_since,
                coalesce(r.last_changed_at > v.compliant_since, false) AS drifted
         FROM resources r
         LEFT JOIN LATERAL (
             SELECT count(*) FILTER (WHERE status IN ('open', 'acknowledged', 'remediating')
                                        OR (status = 'suppressed' AND suppressed_until <= now())) AS active,
                    max(last_resolved_at) AS compliant_since
             FROM compliance_violations v
             WHERE v.tenant_id = r.tenant_id AND v.resource_type = r.resource_type
               AND v.resource_id = r.resource_id
         ) v ON true
         WHERE ($1::text[] IS NULL OR r.tenant_id = ANY($1))
           AND ($2::text IS NULL OR r.resource_type = $2)
           AND ($3::text IS NULL OR r.state = $3)
           AND (NOT $4 OR coalesce(r.last_changed_at > v.compliant_since, false))
         ORDER BY r.last_changed_at DESC, r.resource_type, r.resource_id
         LIMIT $5",
    )
    .bind(q.tenants.ids())
    .bind(q.resource_type.as_deref())
    .bind(q.state.as_deref())
    .bind(q.drifted_only)
    .bind(q.limit)
    .fetch_all(pool)
    .await
}
