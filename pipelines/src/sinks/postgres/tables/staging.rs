//! Events and decisions go in by binary COPY (`copy_binary`). A batch seen for the first time is
//! COPYed straight into its table. COPY has no conflict clause, so a batch holding rows already
//! stored (a redelivery after a crash) fails on the duplicate; it is then COPYed into this
//! connection's staging table and moved with `INSERT … SELECT … ON CONFLICT DO NOTHING`, which
//! keeps the rows exactly once. The first attempt runs under a savepoint, so its failure leaves
//! the batch's transaction usable (docs/decisions/0017).

use sqlx::{AssertSqlSafe, PgConnection};

use crate::sinks::postgres::error_codes::unique_violation;

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
    allowed boolean, result jsonb, bundle_revision text, eval_micros integer,
    anomaly_score double precision, anomaly_model_version integer
) ON COMMIT DELETE ROWS;
";

/// COPYs `data` with `statement` (`COPY … FROM STDIN …`); returns the rows copied.
pub async fn copy_in(
    conn: &mut PgConnection,
    statement: &str,
    data: &[u8],
) -> Result<u64, sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    if let Err(e) = copy.send(data).await {
        // The connection must not be left mid-COPY; the transaction then rolls back.
        let _ = copy.abort(e.to_string()).await;
        return Err(e);
    }
    copy.finish().await
}

/// Stores `data` (binary COPY rows of `columns`) in `table`, skipping rows already stored.
/// Returns the rows newly inserted. `table` and `columns` are constants of this module's
/// callers.
pub(super) async fn insert_once(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    data: Vec<u8>,
) -> Result<u64, sqlx::Error> {
    let copy = |into: &str| format!("COPY {into} ({columns}) FROM STDIN WITH (FORMAT binary)");
    sqlx::raw_sql("SAVEPOINT straight_in")
        .execute(&mut *conn)
        .await?;
    match copy_in(conn, &copy(table), &data).await {
        Ok(rows) => {
            sqlx::raw_sql("RELEASE SAVEPOINT straight_in")
                .execute(&mut *conn)
                .await?;
            return Ok(rows);
        }
        // Not a duplicate (rows of this batch stored already): a real failure.
        Err(e) if !unique_violation(&e) => return Err(e),
        Err(_) => {
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT straight_in")
                .execute(&mut *conn)
                .await?;
        }
    }
    copy_in(conn, &copy(&format!("staging_{table}")), &data).await?;
    let done = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM staging_{table}
         ON CONFLICT DO NOTHING"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
