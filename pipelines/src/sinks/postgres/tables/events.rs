//! `events`: judged events, masked as their bundle says.

use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::staging::insert_once;
use super::Table;
use crate::path::RowSet;
use crate::sinks::postgres::copy_binary::{self, EVENT_COLUMNS};

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
        let rows = copy_binary::events(sets.iter().flat_map(|s| &s.events));
        Box::pin(async move {
            let rows = rows.map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            insert_once(conn, "events", EVENT_COLUMNS, rows).await
        })
    }
}
