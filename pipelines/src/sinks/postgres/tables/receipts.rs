//! `receipts`: each decision's receipt, appended to its tenant's log (`evidence::append`).

use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::Table;
use crate::evidence::append_receipts;
use crate::path::RowSet;

pub(in crate::sinks::postgres) struct Receipts;

impl Table for Receipts {
    fn name(&self) -> &'static str {
        "receipts"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        sets.iter().any(|s| !s.receipts.is_empty())
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        Box::pin(async move {
            let rows: Vec<_> = sets.iter().flat_map(|s| &s.receipts).collect();
            append_receipts(conn, &rows).await
        })
    }
}
