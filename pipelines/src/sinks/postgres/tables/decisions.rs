//! `decisions`: one per judged event.

use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::staging::insert_once;
use super::Table;
use crate::path::RowSet;
use crate::sinks::postgres::copy_binary::{self, DECISION_COLUMNS};

pub(in crate::sinks::postgres) struct Decisions;

impl Table for Decisions {
    fn name(&self) -> &'static str {
        "decisions"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        sets.iter().any(|s| !s.decisions.is_empty())
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        let rows = copy_binary::decisions(sets.iter().flat_map(|s| &s.decisions));
        Box::pin(async move {
            let rows = rows.map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            insert_once(conn, "decisions", DECISION_COLUMNS, rows).await
        })
    }
}
