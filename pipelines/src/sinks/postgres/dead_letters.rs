//! Reading dead letters back, for operators (`portcullis dlq`).

use chrono::{DateTime, Utc};
use portcullis_engine::Origin;
use sqlx::PgPool;

/// Which dead letters to list or replay.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    pub ids: Vec<String>,
    pub source: Option<String>,
    pub tenant: Option<String>,
    pub reason_contains: Option<String>,
    pub include_resolved: bool,
    pub limit: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetterRow {
    pub dead_letter_id: String,
    pub source: String,
    pub topic: String,
    pub kafka_partition: Option<i32>,
    pub kafka_offset: Option<i64>,
    pub record_index: Option<i32>,
    pub tenant_hint: Option<String>,
    pub payload: Vec<u8>,
    /// Why it was set aside in the first place.
    pub reason: String,
    /// Why the latest replay failed, if it did.
    pub last_replay_error: Option<String>,
    pub failed_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub replay_attempts: i32,
}

impl DeadLetterRow {
    /// Where the payload originally came from, so a replay judges it exactly as before.
    pub fn origin(&self) -> Origin {
        match (self.kafka_partition, self.kafka_offset) {
            (Some(partition), Some(offset)) => Origin::Kafka {
                topic: self.topic.clone(),
                partition,
                offset,
            },
            _ => Origin::Mqtt {
                topic: self.topic.clone(),
            },
        }
    }
}

pub async fn list_dead_letters(
    pool: &PgPool,
    f: &DeadLetterFilter,
) -> Result<Vec<DeadLetterRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT dead_letter_id, source, topic, kafka_partition, kafka_offset, record_index, tenant_hint,
                payload, reason, last_replay_error, failed_at, resolved_at, replay_attempts
         FROM dead_letters
         WHERE (cardinality($1::text[]) = 0 OR dead_letter_id = ANY($1))
           AND ($2::text IS NULL OR source = $2)
           AND ($3::text IS NULL OR tenant_hint = $3)
           AND ($4::text IS NULL OR strpos(reason, $4) > 0
                OR strpos(coalesce(last_replay_error, ''), $4) > 0)
           AND ($5 OR resolved_at IS NULL)
         ORDER BY replay_attempts, failed_at, dead_letter_id
         LIMIT $6",
    )
    .bind(&f.ids)
    .bind(&f.source)
    .bind(&f.tenant)
    .bind(&f.reason_contains)
    .bind(f.include_resolved)
    .bind(f.limit)
    .fetch_all(pool)
    .await
}
