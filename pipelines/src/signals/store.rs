//! `trust_signals`.

use chrono::{DateTime, Utc};
use portcullis_actors::StoredSignal;
use portcullis_engine::signals::{subject_kind, ActiveSignal, Severity, Signal};
use portcullis_engine::TenantId;
use serde::Serialize;
use serde_json::Value as Json;
use sqlx::PgPool;

use crate::records::TenantScope;

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SignalRow {
    pub signal_key: String,
    pub tenant_id: String,
    pub subject_kind: String,
    pub subject: String,
    pub kind: String,
    pub severity: String,
    pub source: String,
    pub external_id: Option<String>,
    pub detail: Option<Json>,
    pub received_via: String,
    pub received_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Stores signals received `via` (`kafka`, `http`), each with its key: the same key again (the
/// same source and id, or the same Kafka message redelivered) replaces the signal, so sending
/// it again extends or changes it and a redelivery changes nothing.
pub async fn store_signals(
    pool: &PgPool,
    signals: &[(String, Signal)],
    via: &str,
) -> Result<u64, sqlx::Error> {
    if signals.is_empty() {
        return Ok(0);
    }
    let col = |f: &dyn Fn(&Signal) -> Option<String>| {
        signals.iter().map(|(_, s)| f(s)).collect::<Vec<_>>()
    };
    let done = sqlx::query(
        "INSERT INTO trust_signals (signal_key, tenant_id, subject_kind, subject, kind, severity,
                                    source, external_id, detail, received_via, expires_at)
         SELECT k, t, sk, su, ki, se, so, id, d::jsonb, $10, ex
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $11::timestamptz[])
              AS x(k, t, sk, su, ki, se, so, id, d, ex)
         ON CONFLICT (signal_key) DO UPDATE
         SET subject_kind = EXCLUDED.subject_kind, subject = EXCLUDED.subject,
             kind = EXCLUDED.kind, severity = EXCLUDED.severity, detail = EXCLUDED.detail,
             received_at = now(), expires_at = EXCLUDED.expires_at",
    )
    .bind(signals.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
    .bind(col(&|s| Some(s.tenant.to_string())))
    .bind(col(&|s| Some(s.subject_kind.to_owned())))
    .bind(col(&|s| Some(s.subject.clone())))
    .bind(col(&|s| Some(s.kind.clone())))
    .bind(col(&|s| Some(s.severity.as_str().to_owned())))
    .bind(col(&|s| Some(s.source.clone())))
    .bind(col(&|s| s.id.clone()))
    .bind(col(&|s| s.detail.as_ref().map(Json::to_string)))
    .bind(via)
    .bind(
        signals
            .iter()
            .map(|(_, s)| s.expires_at)
            .collect::<Vec<_>>(),
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The key of a signal with a sender's id: tenant, source and id.
pub fn keyed(signal: &Signal) -> Option<String> {
    signal
        .id
        .as_ref()
        .map(|id| format!("{}/{}/{id}", signal.tenant, signal.source))
}

/// [`keyed`], or `otherwise` for a signal without an id.
pub fn keyed_or(signal: &Signal, otherwise: impl FnOnce() -> String) -> String {
    keyed(signal).unwrap_or_else(otherwise)
}

/// A signal that lasts, as read for the board.
#[derive(sqlx::FromRow)]
struct Lasting {
    tenant_id: String,
    subject_kind: String,
    subject: String,
    kind: String,
    severity: String,
    source: String,
    expires_at: DateTime<Utc>,
}

/// Every signal that lasts at `now`, for the board.
pub async fn lasting(pool: &PgPool, now: DateTime<Utc>) -> Result<Vec<StoredSignal>, sqlx::Error> {
    let rows: Vec<Lasting> = sqlx::query_as(
        "SELECT tenant_id, subject_kind, subject, kind, severity, source, expires_at
         FROM trust_signals WHERE expires_at > $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let about = subject_kind(&r.subject_kind)?;
            Some(StoredSignal {
                tenant: TenantId::parse(&r.tenant_id).ok()?,
                subject_kind: r.subject_kind,
                subject: r.subject,
                signal: ActiveSignal {
                    about,
                    kind: r.kind,
                    severity: Severity::parse(&r.severity)?,
                    source: r.source,
                    expires_at: r.expires_at,
                },
            })
        })
        .collect())
}

#[derive(Debug, Clone)]
pub struct SignalQuery {
    pub tenants: TenantScope,
    pub subject: Option<String>,
    /// Only those that still last.
    pub active: bool,
    pub limit: i64,
}

/// Newest first.
pub async fn list_signals(pool: &PgPool, q: &SignalQuery) -> Result<Vec<SignalRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT signal_key, tenant_id, subject_kind, subject, kind, severity, source,
                external_id, detail, received_via, received_at, expires_at
         FROM trust_signals
         WHERE ($1::text[] IS NULL OR tenant_id = ANY($1))
           AND ($2::text IS NULL OR subject = $2)
           AND (NOT $3 OR expires_at > now())
         ORDER BY received_at DESC
         LIMIT $4",
    )
    .bind(q.tenants.ids())
    .bind(q.subject.as_deref())
    .bind(q.active)
    .bind(q.limit)
    .fetch_all(pool)
    .await
}
