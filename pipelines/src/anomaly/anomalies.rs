//! Anomalies (`anomalies`) as listed: events scored at or above their line's threshold, with the
//! features that made them unusual and how their decision went.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use crate::records::TenantScope;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AnomalyRow {
    pub tenant_id: String,
    pub event_id: String,
    pub event_time: DateTime<Utc>,
    pub scope: String,
    pub subject: String,
    pub action: String,
    pub score: f64,
    pub threshold: f64,
    pub model_version: i32,
    /// `[{feature, value, weight, training_share}]`, most telling first.
    pub unusual: Value,
    /// The subject's trust once this event was counted.
    pub trust: i16,
    pub detected_at: DateTime<Utc>,
    /// The event's decision (`allow` or `deny`), if it is still stored.
    pub outcome: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AnomalyQuery {
    pub tenants: TenantScope,
    pub scope: Option<String>,
    pub subject: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// Anomalies, newest first.
pub async fn list_anomalies(
    pool: &PgPool,
    q: &AnomalyQuery,
) -> Result<Vec<AnomalyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.tenant_id, a.event_id, a.event_time, a.scope, a.subject, a.action, a.score,
                a.threshold, a.model_version, a.unusual, a.trust, a.detected_at,
                (SELECT CASE bool_and(d.allowed) WHEN true THEN 'allow' WHEN false THEN 'deny' END
                 FROM decisions d
                 WHERE d.tenant_id = a.tenant_id AND d.event_id = a.event_id
                   AND d.event_time = a.event_time) AS outcome
         FROM anomalies a
         WHERE ($1::text[] IS NULL OR a.tenant_id = ANY($1))
           AND ($2::text IS NULL OR a.scope = $2)
           AND ($3::text IS NULL OR a.subject = $3)
           AND ($4::timestamptz IS NULL OR a.detected_at >= $4)
         ORDER BY a.detected_at DESC, a.event_time DESC
         LIMIT $5",
    )
    .bind(q.tenants.ids())
    .bind(q.scope.as_deref())
    .bind(q.subject.as_deref())
    .bind(q.since)
    .bind(q.limit)
    .fetch_all(pool)
    .await
}
