//! What a replay of dead letters records on them: resolved, or why it still fails.

use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::Table;
use crate::path::RowSet;

/// Dead letters a replay resolved, marked in the transaction that stores their rows.
pub(in crate::sinks::postgres) struct Resolves;

impl Table for Resolves {
    fn name(&self) -> &'static str {
        "resolved_dead_letters"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        sets.iter().any(|s| !s.resolves.is_empty())
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        let ids: Vec<String> = sets.iter().flat_map(|s| s.resolves.clone()).collect();
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE dead_letters SET resolved_at = coalesce(resolved_at, now()), replay_attempts = replay_attempts + 1,
                        last_replayed_at = now(), last_replay_error = NULL
                 WHERE dead_letter_id = ANY($1)",
            )
            .bind(ids)
            .execute(conn)
            .await?;
            Ok(done.rows_affected())
        })
    }
}

/// Dead letters a replay could still not process: the new reason is kept beside the original.
pub(in crate::sinks::postgres) struct ReplayFailures;

impl Table for ReplayFailures {
    fn name(&self) -> &'static str {
        "failed_replays"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        sets.iter().any(|s| !s.replay_failures.is_empty())
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        let (ids, reasons): (Vec<String>, Vec<String>) = sets
            .iter()
            .flat_map(|s| s.replay_failures.iter().cloned())
            .unzip();
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE dead_letters d
                 SET last_replay_error = f.reason, replay_attempts = replay_attempts + 1,
                     last_replayed_at = now()
                 FROM UNNEST($1::text[], $2::text[]) AS f(id, reason)
                 WHERE d.dead_letter_id = f.id",
            )
            .bind(ids)
            .bind(reasons)
            .execute(conn)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
