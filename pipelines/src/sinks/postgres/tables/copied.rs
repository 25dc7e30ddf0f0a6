//! A table whose rows go in by binary COPY, straight in or through staging (see `staging`).

use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::staging::insert_once;
use super::Table;
use crate::path::RowSet;
use crate::sinks::postgres::copy_binary::EncodeError;

/// What differs between such tables: their name, columns, and how a row set's rows of theirs
/// are found and encoded.
pub(in crate::sinks::postgres) struct CopiedTable {
    pub name: &'static str,
    pub columns: &'static str,
    pub holds: fn(&RowSet) -> bool,
    pub encode: fn(&[RowSet]) -> Result<Vec<u8>, EncodeError>,
}

impl Table for CopiedTable {
    fn name(&self) -> &'static str {
        self.name
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        sets.iter().any(self.holds)
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        let rows = (self.encode)(sets);
        Box::pin(async move {
            let rows = rows.map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            insert_once(conn, self.name, self.columns, rows).await
        })
    }
}
