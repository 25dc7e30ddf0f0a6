//! `events`: judged events, masked as their bundle says.

use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::staging::stage_and_insert;
use super::Table;
use crate::path::RowSet;
use crate::sinks::postgres::csv::{events_csv, EVENT_COLUMNS};

pub(in crate::sinks::postgres) struct Events;

impl Table for Events {
    fn name(&self) -> &'static str {
        "events"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        sets.iter().any(|s| !s.events.is_empty())
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        let csv = events_csv(sets.iter().flat_map(|s| &s.events));
        Box::pin(stage_and_insert(conn, "events", EVENT_COLUMNS, csv))
    }
}
