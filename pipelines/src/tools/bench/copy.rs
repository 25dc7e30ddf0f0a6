//! COPY of events straight into the table: the ceiling the pipeline is measured against, in the
//! encoding the engine's sink uses.

use portcullis_engine::Event;
use sqlx::PgPool;

use crate::sinks::postgres::copy_binary::{self, EVENT_COLUMNS};
use crate::sinks::postgres::copy_in;

/// COPYs `events` into the events table in one statement; returns the rows copied.
pub async fn copy_events<'a>(
    pool: &PgPool,
    events: impl IntoIterator<Item = &'a Event>,
) -> anyhow::Result<u64> {
    let rows = copy_binary::events(events.into_iter().map(|e| (e, None)))?;
    let mut conn = pool.acquire().await?;
    let statement = format!("COPY events ({EVENT_COLUMNS}) FROM STDIN WITH (FORMAT binary)");
    Ok(copy_in(&mut conn, &statement, &rows).await?)
}
