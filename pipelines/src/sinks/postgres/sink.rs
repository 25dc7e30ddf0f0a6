//! The event path's Postgres sink: every row of a batch in one transaction, each table written
//! idempotently (`ON CONFLICT DO NOTHING` on stable keys), so a batch written twice (after a
//! crash or a retry) leaves the same rows as once.

use futures::future::BoxFuture;
use sqlx::PgPool;

use super::tables::TABLES;
use crate::path::{RowSet, RowSink, SinkError, WriteCounts};

#[derive(Clone)]
pub struct PgSink {
    pool: PgPool,
}

impl PgSink {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Writes `sets` in one transaction; the Postgres error as it came.
    pub async fn write_sets(&self, sets: &[RowSet]) -> Result<WriteCounts, sqlx::Error> {
        let mut counts = WriteCounts::default();
        if sets.iter().all(RowSet::is_empty) {
            return Ok(counts);
        }
        let mut tx = self.pool.begin().await?;
        for table in TABLES {
            if table.has_rows(sets) {
                counts.set(table.name(), table.write(&mut tx, sets).await?);
            }
        }
        tx.commit().await?;
        Ok(counts)
    }
}

impl RowSink for PgSink {
    fn name(&self) -> &'static str {
        "Postgres"
    }

    fn write<'a>(&'a self, sets: &'a [RowSet]) -> BoxFuture<'a, Result<WriteCounts, SinkError>> {
        Box::pin(async move {
            self.write_sets(sets).await.map_err(|e| {
                if super::refused(&e) {
                    SinkError::Refused(e.to_string())
                } else {
                    SinkError::Unavailable(e.to_string())
                }
            })
        })
    }
}
