//! `decisions`: one per judged event.

use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::staging::stage_and_insert;
use super::Table;
use crate::path::RowSet;
use crate::sinks::postgres::csv::{decisions_csv, DECISION_COLUMNS};

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
        let csv = decisions_csv(sets.iter().flat_map(|s| &s.decisions));
        Box::pin(stage_and_insert(conn, "decisions", DECISION_COLUMNS, csv))
    }
}
