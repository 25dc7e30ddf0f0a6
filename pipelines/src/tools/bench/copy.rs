//! COPY of events straight into the table: the ceiling the pipeline is measured against.

use portcullis_engine::Event;
use sqlx::postgres::PgPoolCopyExt;
use sqlx::PgPool;

use crate::sinks::postgres::csv::{events_csv, EVENT_COLUMNS};

/// COPYs `events` into the events table in one statement; returns the rows copied.
pub async fn copy_events(pool: &PgPool, events: &[Event]) -> Result<u64, sqlx::Error> {
    let statement = format!("COPY events ({EVENT_COLUMNS}) FROM STDIN WITH (FORMAT csv)");
    let mut copy = pool.copy_in_raw(&statement).await?;
    if let Err(e) = copy.send(events_csv(events)).await {
        // The connection must not be left mid-COPY.
        let _ = copy.abort(e.to_string()).await;
        return Err(e);
    }
    copy.finish().await
}
