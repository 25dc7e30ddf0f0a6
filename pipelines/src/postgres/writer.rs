//! Batched, idempotent writes: one transaction per batch, `ON CONFLICT DO NOTHING` on stable keys,
//! so a batch written twice (after a crash or a retry) leaves the same rows as once.
//!
//! Events and decisions are COPYed into per-connection staging tables, then moved with
//! `INSERT … SELECT … ON CONFLICT DO NOTHING`: COPY is the fastest way in, and the INSERT keeps
//! the idempotence COPY alone cannot give.

/// Created on every new connection (`after_connect`). Temporary tables are unlogged and private
/// to their session, and `ON COMMIT DELETE ROWS` empties them at the end of each transaction,
/// so a failed batch leaves nothing behind either. Column types mirror the target tables, so a
/// value Postgres refuses is refused at the COPY, with the row's content in the error.
pub const STAGING_TABLES: &str = "
CREATE TEMPORARY TABLE IF NOT EXISTS staging_events (
    tenant_id text, event_id text, event_time timestamptz, source text, kind text, account text,
    principal text, action text, service text, resource text, source_ip text, raw jsonb
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS staging_decisions (
    decision_id uuid, tenant_id text, event_id text, event_time timestamptz, rule_path text,
    allowed boolean, result jsonb, bundle_revision text, eval_micros integer
) ON COMMIT DELETE ROWS;
";

use portcullis_engine::{DeadLetter, Decision, Event, Origin};
use sqlx::{AssertSqlSafe, PgPool};

use super::csv::{decisions_csv, events_csv, DECISION_COLUMNS, EVENT_COLUMNS};

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
                        last_replayed_at = now(), last_replay_error = NULL
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

/// COPYs `csv` into a staging table of this connection (see [`STAGING_TABLES`]).
async fn copy_in(tx: &mut Tx<'_>, statement: &str, csv: Vec<u8>) -> Result<u64, sqlx::Error> {
    let mut copy = tx.copy_in_raw(statement).await?;
    if let Err(e) = copy.send(csv).await {
        // The connection must not be left mid-COPY; the transaction then rolls back.
        let _ = copy.abort(e.to_string()).await;
        return Err(e);
    }
    copy.finish().await
}

async fn insert_events(tx: &mut Tx<'_>, events: &[Event]) -> Result<u64, sqlx::Error> {
    if events.is_empty() {
        return Ok(0);
    }
    stage_and_insert(tx, "events", EVENT_COLUMNS, events_csv(events)).await
}

/// Decisions are partitioned like events, by the time of the event they judged.
async fn insert_decisions(tx: &mut Tx<'_>, decisions: &[Decision]) -> Result<u64, sqlx::Error> {
    if decisions.is_empty() {
        return Ok(0);
    }
    stage_and_insert(tx, "decisions", DECISION_COLUMNS, decisions_csv(decisions)).await
}

/// COPYs `csv` into `staging_{table}` and moves it into `table`, skipping rows already stored.
/// Returns the rows newly inserted. `table` and `columns` are constants of this module.
async fn stage_and_insert(
    tx: &mut Tx<'_>,
    table: &str,
    columns: &str,
    csv: Vec<u8>,
) -> Result<u64, sqlx::Error> {
    copy_in(
        tx,
        &format!("COPY staging_{table} ({columns}) FROM STDIN WITH (FORMAT csv)"),
        csv,
    )
    .await?;
    let done = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM staging_{table}
         ON CONFLICT DO NOTHING"
    )))
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
