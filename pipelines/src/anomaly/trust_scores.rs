//! Trust per principal and per agent (`trust_scores`), as the engine stored it and as it stands
//! now: the stored risk decays with its line's half-life up to the time asked about.

use chrono::{DateTime, Utc};
use portcullis_actors::StoredTrust;
use portcullis_engine::anomaly::trust::{
    TrustLevel, TrustState, MAX_COUNTED_ANOMALIES, MAX_TRUST_SUBJECTS,
};
use portcullis_engine::anomaly::{AnomalySettings, ModelScope};
use portcullis_engine::TenantId;
use serde::Serialize;
use sqlx::PgPool;

use crate::records::TenantScope;

/// A subject's trust as listed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrustRow {
    pub tenant_id: String,
    /// `principal` or `agent`.
    pub subject_kind: String,
    pub subject: String,
    /// Trust now, 0 to 100, and its level.
    pub trust: u8,
    pub level: TrustLevel,
    /// Trust as of the latest event counted, and that event's time.
    pub trust_at_last_event: u8,
    pub as_of: DateTime<Utc>,
    /// Anomalies of this subject in the last 24 hours.
    pub anomalies_24h: i64,
}

/// What a trust listing is cut by.
#[derive(Debug, Clone)]
pub struct TrustQuery {
    pub tenants: TenantScope,
    /// `principal` or `agent`; both when unset.
    pub subject_kind: Option<String>,
    pub subject: Option<String>,
    pub limit: i64,
}

/// A line's stored trust, for its actor to resume from, with its most recent anomalies (stored
/// in the same transactions as the trust they took, so these are exactly the ones counted).
pub async fn stored_trust(
    pool: &PgPool,
    tenant: &TenantId,
    scope: ModelScope,
) -> Result<StoredTrust, sqlx::Error> {
    // Subjects back at full trust are as if never seen: only the others are resumed, most
    // distrusted first, as many as a book follows.
    let rows: Vec<(String, f64, DateTime<Utc>, i64)> = sqlx::query_as(
        "SELECT subject, risk, as_of, seq FROM (
             SELECT t.subject, t.risk, t.as_of, t.seq,
                    t.risk * power(2, -greatest(extract(epoch FROM now() - t.as_of), 0)
                                       / coalesce(s.trust_half_life_secs, $3)) AS risk_now
             FROM trust_scores t
             LEFT JOIN anomaly_settings s ON s.tenant_id = t.tenant_id AND s.scope = $4
             WHERE t.tenant_id = $1 AND t.subject_kind = $2) now
         WHERE risk_now >= 0.005
         ORDER BY risk_now DESC LIMIT $5",
    )
    .bind(tenant.as_str())
    .bind(scope.subject_kind())
    .bind(AnomalySettings::DEFAULT_TRUST_HALF_LIFE_SECS as i32)
    .bind(scope.as_str())
    .bind(MAX_TRUST_SUBJECTS as i64)
    .fetch_all(pool)
    .await?;
    let counted: Vec<String> = sqlx::query_scalar(
        "SELECT event_id FROM (
             SELECT event_id, detected_at FROM anomalies
             WHERE tenant_id = $1 AND scope = $2
             ORDER BY detected_at DESC LIMIT $3) recent
         ORDER BY detected_at",
    )
    .bind(tenant.as_str())
    .bind(scope.as_str())
    .bind(MAX_COUNTED_ANOMALIES as i64)
    .fetch_all(pool)
    .await?;
    let last_seq: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(seq), 0) FROM trust_scores WHERE tenant_id = $1 AND subject_kind = $2",
    )
    .bind(tenant.as_str())
    .bind(scope.subject_kind())
    .fetch_one(pool)
    .await?;
    Ok(StoredTrust {
        last_seq,
        subjects: rows
            .into_iter()
            .map(|(subject, risk, as_of, seq)| (subject, TrustState { risk, as_of }, seq))
            .collect(),
        counted,
    })
}

/// Subjects' trust at `now`, least trusted first.
pub async fn list_trust(
    pool: &PgPool,
    q: &TrustQuery,
    now: DateTime<Utc>,
) -> Result<Vec<TrustRow>, sqlx::Error> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        String,
        String,
        String,
        f64,
        i16,
        DateTime<Utc>,
        Option<i32>,
        i64,
    )> = sqlx::query_as(
        "SELECT t.tenant_id, t.subject_kind, t.subject, t.risk, t.trust, t.as_of,
                    s.trust_half_life_secs,
                    (SELECT count(*) FROM anomalies a
                     WHERE a.tenant_id = t.tenant_id AND a.subject = t.subject
                       AND a.scope = CASE t.subject_kind WHEN 'principal' THEN 'cloudtrail'
                                                         ELSE 'device' END
                       AND a.event_time > $5::timestamptz - interval '24 hours')
             FROM trust_scores t
             LEFT JOIN anomaly_settings s
               ON s.tenant_id = t.tenant_id
              AND s.scope = CASE t.subject_kind WHEN 'principal' THEN 'cloudtrail' ELSE 'device' END
             WHERE ($1::text[] IS NULL OR t.tenant_id = ANY($1))
               AND ($2::text IS NULL OR t.subject_kind = $2)
               AND ($3::text IS NULL OR t.subject = $3)
             -- Least trusted now: the stored risk decayed to $5 with the line's half-life.
             ORDER BY t.risk * power(2, -greatest(extract(epoch FROM $5::timestamptz - t.as_of), 0)
                                        / coalesce(s.trust_half_life_secs, $6)) DESC,
                      t.as_of DESC
             LIMIT $4",
    )
    .bind(q.tenants.ids())
    .bind(q.subject_kind.as_deref())
    .bind(q.subject.as_deref())
    .bind(q.limit)
    .bind(now)
    .bind(AnomalySettings::DEFAULT_TRUST_HALF_LIFE_SECS as i32)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(tenant_id, subject_kind, subject, risk, stored, as_of, half_life, anomalies_24h)| {
                let half_life =
                    half_life.map_or(AnomalySettings::DEFAULT_TRUST_HALF_LIFE_SECS, |h| h as u32);
                // Trust now: decayed from the last event counted (not at all before it).
                let trust = TrustState { risk, as_of }.trust_at(now, half_life);
                TrustRow {
                    tenant_id,
                    subject_kind,
                    subject,
                    trust,
                    level: TrustLevel::of(trust),
                    trust_at_last_event: stored.clamp(0, 100) as u8,
                    as_of,
                    anomalies_24h,
                }
            },
        )
        .collect())
}
