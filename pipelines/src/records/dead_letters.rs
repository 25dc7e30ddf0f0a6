//! Dead letters with their reasons, newest first. A dead letter whose tenant could not be told
//! (malformed JSON, an unmapped account) belongs to no tenant, so only the all-tenants scope
//! sees it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::cursor::Cursor;
use super::page::{Page, Window};

/// Bytes of each payload shown in a listing.
const PREVIEW_BYTES: i32 = 4096;

/// What to list: a window (by failure time) and optional filters.
#[derive(Debug, Clone)]
pub struct DeadLetterQuery {
    pub window: Window,
    pub source: Option<String>,
    pub reason_contains: Option<String>,
    /// Include those a replay has resolved.
    pub include_resolved: bool,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadLetterSummary {
    pub dead_letter_id: String,
    pub source: String,
    pub topic: String,
    pub kafka_partition: Option<i32>,
    pub kafka_offset: Option<i64>,
    pub tenant_id: Option<String>,
    pub reason: String,
    pub last_replay_error: Option<String>,
    pub failed_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub replay_attempts: i32,
    pub payload_bytes: i32,
    /// The payload's first bytes as text (invalid UTF-8 replaced).
    pub payload_preview: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    dead_letter_id: String,
    source: String,
    topic: String,
    kafka_partition: Option<i32>,
    kafka_offset: Option<i64>,
    tenant_hint: Option<String>,
    reason: String,
    last_replay_error: Option<String>,
    failed_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    replay_attempts: i32,
    payload_bytes: i32,
    preview: Vec<u8>,
}

impl From<Row> for DeadLetterSummary {
    fn from(r: Row) -> Self {
        Self {
            dead_letter_id: r.dead_letter_id,
            source: r.source,
            topic: r.topic,
            kafka_partition: r.kafka_partition,
            kafka_offset: r.kafka_offset,
            tenant_id: r.tenant_hint,
            reason: r.reason,
            last_replay_error: r.last_replay_error,
            failed_at: r.failed_at,
            resolved_at: r.resolved_at,
            replay_attempts: r.replay_attempts,
            payload_bytes: r.payload_bytes,
            payload_preview: String::from_utf8_lossy(&r.preview).into_owned(),
        }
    }
}

fn key(d: &DeadLetterSummary) -> Cursor {
    Cursor {
        at: d.failed_at,
        id: d.dead_letter_id.clone(),
    }
}

pub async fn dead_letter_page(
    pool: &PgPool,
    q: &DeadLetterQuery,
) -> Result<Page<DeadLetterSummary>, sqlx::Error> {
    let limit = q.window.page_size();
    let mut b = QueryBuilder::<Postgres>::new(
        "SELECT dead_letter_id, source, topic, kafka_partition, kafka_offset, tenant_hint, reason,
                last_replay_error, failed_at, resolved_at, replay_attempts,
                octet_length(payload) AS payload_bytes, substring(payload FROM 1 FOR ",
    );
    b.push_bind(PREVIEW_BYTES)
        .push(") AS preview FROM dead_letters WHERE true");
    q.window.push_filters(&mut b, "tenant_hint", "failed_at");
    if !q.include_resolved {
        b.push(" AND resolved_at IS NULL");
    }
    if let Some(s) = &q.source {
        b.push(" AND source = ").push_bind(s.clone());
    }
    if let Some(text) = &q.reason_contains {
        b.push(" AND (strpos(reason, ")
            .push_bind(text.clone())
            .push(") > 0 OR strpos(coalesce(last_replay_error, ''), ")
            .push_bind(text.clone())
            .push(") > 0)");
    }
    if let Some(c) = &q.window.after {
        b.push(" AND (failed_at, dead_letter_id) < (")
            .push_bind(c.at)
            .push(", ")
            .push_bind(c.id.clone())
            .push(")");
    }
    b.push(" ORDER BY failed_at DESC, dead_letter_id DESC LIMIT ")
        .push_bind(limit + 1);
    let rows = b.build_query_as::<Row>().fetch_all(pool).await?;
    let rows = rows.into_iter().map(DeadLetterSummary::from).collect();
    Ok(Page::from_rows(rows, limit, key))
}
