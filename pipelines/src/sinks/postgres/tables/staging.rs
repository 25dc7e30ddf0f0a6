//! COPY into per-connection staging tables, then `INSERT … SELECT … ON CONFLICT DO NOTHING`:
//! COPY is the fastest way in, and the INSERT keeps the idempotence COPY alone cannot give.

use sqlx::{AssertSqlSafe, PgConnection};

/// Created on every new connection (`after_connect`). Temporary tables are unlogged and private
/// to their session, and `ON COMMIT DELETE ROWS` empties them at the end of each transaction,
/// so a failed batch leaves nothing behind either. Column types mirror the target tables, so a
/// value Postgres refuses is refused at the COPY, with the row's content in the error.
pub const STAGING_TABLES: &str = "
CREATE TEMPORARY TABLE IF NOT EXISTS staging_events (
    tenant_id text, event_id text, event_time timestamptz, source text, kind text, account text,
    principal text, action text, service text, resource text, source_ip text, raw jsonb
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS staging_decisions (
    decision_id uuid, tenant_id text, event_id text, event_time timestamptz, rule_path text,
    allowed boolean, result jsonb, bundle_revision text, eval_micros integer
) ON COMMIT DELETE ROWS;
";

/// COPYs `csv` with `statement` (`COPY … FROM STDIN`); returns the rows copied.
pub async fn copy_in(
    conn: &mut PgConnection,
    statement: &str,
    csv: Vec<u8>,
) -> Result<u64, sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    if let Err(e) = copy.send(csv).await {
        // The connection must not be left mid-COPY; the transaction then rolls back.
        let _ = copy.abort(e.to_string()).await;
        return Err(e);
    }
    copy.finish().await
}

/// COPYs `csv` into `staging_{table}` and moves it into `table`, skipping rows already stored.
/// Returns the rows newly inserted. `table` and `columns` are constants of this module's
/// callers.
pub(super) async fn stage_and_insert(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    csv: Vec<u8>,
) -> Result<u64, sqlx::Error> {
    copy_in(
        conn,
        &format!("COPY staging_{table} ({columns}) FROM STDIN WITH (FORMAT csv)"),
        csv,
    )
    .await?;
    let done = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM staging_{table}
         ON CONFLICT DO NOTHING"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
