//! `dead_letters`: what could not be decoded, judged or stored, with the reason.

use futures::future::BoxFuture;
use portcullis_engine::{DeadLetter, Origin};
use sqlx::PgConnection;

use super::Table;
use crate::path::RowSet;

pub(in crate::sinks::postgres) struct DeadLetters;

impl Table for DeadLetters {
    fn name(&self) -> &'static str {
        "dead_letters"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        sets.iter().any(|s| !s.dead_letters.is_empty())
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        let dead: Vec<&DeadLetter> = sets.iter().flat_map(|s| &s.dead_letters).collect();
        Box::pin(async move { insert(conn, &dead).await })
    }
}

/// Inserts dead letters; one already stored (same id: a redelivery) is skipped.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    dead: &[&DeadLetter],
) -> Result<u64, sqlx::Error> {
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
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
