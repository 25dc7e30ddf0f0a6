//! Batched, idempotent writes: one transaction per batch, `ON CONFLICT DO NOTHING` on stable keys,
//! so a batch written twice (after a crash or a retry) leaves the same rows as once.

use chrono::{DateTime, Utc};
use portcullis_engine::{DeadLetter, Decision, Event, Origin};
use sqlx::PgPool;
use uuid::Uuid;

/// Everything one batch of input produced.
#[derive(Debug, Default)]
pub struct RowBatch {
    pub events: Vec<Event>,
    pub decisions: Vec<Decision>,
    pub dead_letters: Vec<DeadLetter>,
    /// Dead letters that these rows finally resolve (a replay): marked in the same transaction.
    pub resolves: Vec<String>,
}

impl RowBatch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.decisions.is_empty()
            && self.dead_letters.is_empty()
            && self.resolves.is_empty()
    }
}

/// Rows actually inserted (duplicates from redelivery are not counted).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteCounts {
    pub events: u64,
    pub decisions: u64,
    pub dead_letters: u64,
}

impl WriteCounts {
    pub fn add(&mut self, other: WriteCounts) {
        self.events += other.events;
        self.decisions += other.decisions;
        self.dead_letters += other.dead_letters;
    }
}

#[derive(Clone)]
pub struct PgWriter {
    pool: PgPool,
}

impl PgWriter {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn write(&self, batch: &RowBatch) -> Result<WriteCounts, sqlx::Error> {
        if batch.is_empty() {
            return Ok(WriteCounts::default());
        }
        let mut tx = self.pool.begin().await?;
        let events = insert_events(&mut tx, &batch.events).await?;
        let decisions = insert_decisions(&mut tx, &batch.decisions).await?;
        let dead_letters = insert_dead_letters(&mut tx, &batch.dead_letters).await?;
        if !batch.resolves.is_empty() {
            sqlx::query(
                "UPDATE dead_letters SET resolved_at = now(), replay_attempts = replay_attempts + 1,
                        last_replayed_at = now()
                 WHERE dead_letter_id = ANY($1)",
            )
            .bind(&batch.resolves)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(WriteCounts {
            events,
            decisions,
            dead_letters,
        })
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

async fn insert_events(tx: &mut Tx<'_>, events: &[Event]) -> Result<u64, sqlx::Error> {
    if events.is_empty() {
        return Ok(0);
    }
    let col = |f: fn(&Event) -> String| events.iter().map(f).collect::<Vec<_>>();
    let opt = |f: fn(&Event) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
    let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.event_time).collect();
    let done = sqlx::query(
        "INSERT INTO events (tenant_id, event_id, event_time, source, kind, account, principal,
                             action, service, resource, source_ip, raw)
         SELECT t, i, et, s, k, a, p, ac, sv, r, ip, raw::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
              AS u(t, i, et, s, k, a, p, ac, sv, r, ip, raw)
         ON CONFLICT DO NOTHING",
    )
    .bind(col(|e| e.tenant_id.to_string()))
    .bind(col(|e| e.event_id.clone()))
    .bind(times)
    .bind(col(|e| e.source.as_str().to_owned()))
    .bind(col(|e| e.kind.as_str().to_owned()))
    .bind(col(|e| e.account.clone()))
    .bind(col(|e| e.principal.clone()))
    .bind(col(|e| e.action.clone()))
    .bind(col(|e| e.service.clone()))
    .bind(opt(|e| e.resource.clone()))
    .bind(opt(|e| e.source_ip.clone()))
    .bind(col(|e| e.raw.to_string()))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Decisions are partitioned like events, by the time of the event they judged.
async fn insert_decisions(tx: &mut Tx<'_>, decisions: &[Decision]) -> Result<u64, sqlx::Error> {
    if decisions.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "INSERT INTO decisions (decision_id, tenant_id, event_id, event_time, rule_path, allowed,
                                result, bundle_revision, eval_micros)
         SELECT id, t, e, et, rp, al, res::jsonb, rev, us
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::bool[],
                     $7::text[], $8::text[], $9::int4[])
              AS u(id, t, e, et, rp, al, res, rev, us)
         ON CONFLICT DO NOTHING",
    )
    .bind(
        decisions
            .iter()
            .map(|d| d.decision_id)
            .collect::<Vec<Uuid>>(),
    )
    .bind(
        decisions
            .iter()
            .map(|d| d.tenant_id.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(
        decisions
            .iter()
            .map(|d| d.event_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(decisions.iter().map(|d| d.event_time).collect::<Vec<_>>())
    .bind(
        decisions
            .iter()
            .map(|d| d.rule_path.clone())
            .collect::<Vec<_>>(),
    )
    .bind(decisions.iter().map(|d| d.allowed).collect::<Vec<_>>())
    .bind(
        decisions
            .iter()
            .map(|d| (!d.result.is_null()).then(|| d.result.to_string()))
            .collect::<Vec<_>>(),
    )
    .bind(
        decisions
            .iter()
            .map(|d| d.bundle_revision.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        decisions
            .iter()
            .map(|d| i32::try_from(d.eval_micros).unwrap_or(i32::MAX))
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

async fn insert_dead_letters(tx: &mut Tx<'_>, dead: &[DeadLetter]) -> Result<u64, sqlx::Error> {
    if dead.is_empty() {
        return Ok(0);
    }
    let (partitions, offsets): (Vec<Option<i32>>, Vec<Option<i64>>) = dead
        .iter()
        .map(|d| match d.origin {
            Origin::Kafka {
                partition, offset, ..
            } => (Some(partition), Some(offset)),
            Origin::Mqtt { .. } => (None, None),
        })
        .unzip();
    let done = sqlx::query(
        "INSERT INTO dead_letters (dead_letter_id, source, topic, kafka_partition, kafka_offset,
                                   record_index, tenant_hint, payload, reason)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int4[], $5::int8[], $6::int4[],
                              $7::text[], $8::bytea[], $9::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(dead.iter().map(|d| d.id.clone()).collect::<Vec<_>>())
    .bind(dead.iter().map(|d| d.origin.source().as_str().to_owned()).collect::<Vec<_>>())
    .bind(dead.iter().map(|d| d.origin.topic().to_owned()).collect::<Vec<_>>())
    .bind(partitions)
    .bind(offsets)
    .bind(dead.iter().map(|d| d.record_index.map(|i| i as i32)).collect::<Vec<_>>())
    .bind(dead.iter().map(|d| d.tenant_hint.clone()).collect::<Vec<_>>())
    .bind(dead.iter().map(|d| d.payload.clone()).collect::<Vec<_>>())
    .bind(dead.iter().map(|d| d.reason.clone()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}
