//! Appending receipts to their tenants' logs, inside the caller's transaction.
//!
//! Each tenant's log row is grown by its new receipts in name order (so two batches holding the
//! same tenants cannot deadlock), which locks it until the transaction ends: leaf indexes then
//! follow commit order and two writers never share one.
//!
//! A batch none of whose decisions has a receipt yet, the common case, costs a savepoint, one
//! statement and one binary COPY: the growth returns where each tenant's receipts start, and
//! they are COPYed in at those indexes. COPY has no conflict clause, so a receipt whose decision has one
//! already (a redelivery, even one another engine wrote a moment ago) fails it on the unique
//! `(tenant_id, decision_id)` key; the attempt, made under a savepoint, is undone, and the batch
//! goes in by one statement that skips the receipts stored already and grows each log by the
//! rest (as events and decisions do, docs/decisions/0017).

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::ReceiptRow;
use crate::sinks::postgres::copy_binary::Encoder;
use crate::sinks::postgres::copy_in;
use crate::sinks::postgres::error_codes::unique_violation;

const COPY_RECEIPTS: &str = "COPY receipts (tenant_id, leaf_index, decision_id, kind, subject, \
     outcome, body, leaf_hash) FROM STDIN WITH (FORMAT binary)";

/// Appends `rows` to their tenants' logs; returns the receipts newly stored.
pub async fn append_receipts(
    conn: &mut PgConnection,
    rows: &[&ReceiptRow],
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    sqlx::raw_sql("SAVEPOINT receipts_straight_in")
        .execute(&mut *conn)
        .await?;
    match append_all(conn, rows).await {
        // The savepoint is left to the commit: releasing it would be one more round trip
        // while the logs are locked.
        Ok(stored) => Ok(stored),
        Err(e) if !unique_violation(&e) => Err(e),
        Err(_) => {
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT receipts_straight_in")
                .execute(&mut *conn)
                .await?;
            append_new(conn, rows).await
        }
    }
}

/// Appends every one of `rows`, none of which may have a receipt stored already.
async fn append_all(conn: &mut PgConnection, rows: &[&ReceiptRow]) -> Result<u64, sqlx::Error> {
    let mut added: BTreeMap<&str, i64> = BTreeMap::new();
    for r in rows {
        *added.entry(r.tenant_id.as_str()).or_default() += 1;
    }
    let (tenants, counts): (Vec<&str>, Vec<i64>) = added.iter().map(|(t, n)| (*t, *n)).unzip();
    let grown: Vec<(String, i64)> = sqlx::query_as(
        "INSERT INTO receipt_logs AS l (tenant_id, size)
         SELECT t, n FROM UNNEST($1::text[], $2::bigint[]) AS x(t, n) ORDER BY t
         ON CONFLICT (tenant_id) DO UPDATE SET size = l.size + EXCLUDED.size, updated_at = now()
         RETURNING tenant_id, size",
    )
    .bind(&tenants)
    .bind(&counts)
    .fetch_all(&mut *conn)
    .await?;
    // Each tenant's next leaf index: where its receipts start.
    for (tenant, size) in &grown {
        if let Some(n) = added.get_mut(tenant.as_str()) {
            *n = size - *n;
        }
    }
    let mut out = Encoder::new(rows.iter().map(|r| r.body.len() + 160).sum());
    for r in rows {
        let next = added
            .get_mut(r.tenant_id.as_str())
            .expect("every tenant of the batch was counted");
        out.row(8);
        out.text(&r.tenant_id);
        out.field(&next.to_be_bytes());
        *next += 1;
        out.field(r.decision_id.as_bytes());
        out.text(r.kind);
        out.text(&r.subject);
        out.text(r.outcome);
        out.text(&r.body);
        out.field(&r.leaf_hash);
    }
    copy_in(conn, COPY_RECEIPTS, &out.finish()).await
}

/// Appends those of `rows` whose decision has no receipt yet (once each).
async fn append_new(conn: &mut PgConnection, rows: &[&ReceiptRow]) -> Result<u64, sqlx::Error> {
    let n = rows.len();
    let (mut tenants, mut ids, mut kinds, mut subjects, mut outcomes, mut bodies, mut hashes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in rows {
        tenants.push(r.tenant_id.as_str());
        ids.push(r.decision_id);
        kinds.push(r.kind);
        subjects.push(r.subject.as_str());
        outcomes.push(r.outcome);
        bodies.push(r.body.as_str());
        hashes.push(&r.leaf_hash[..]);
    }
    let mut locked: Vec<&str> = tenants.clone();
    locked.sort_unstable();
    locked.dedup();
    sqlx::query(
        "INSERT INTO receipt_logs AS l (tenant_id, size)
         SELECT t, 0 FROM UNNEST($1::text[]) AS x(t) ORDER BY t
         ON CONFLICT (tenant_id) DO UPDATE SET updated_at = now()",
    )
    .bind(&locked)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query(
        "WITH batch AS (
             SELECT DISTINCT ON (t, d) t, d, k, s, o, b, h, ord
             FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::bytea[]) WITH ORDINALITY AS x(t, d, k, s, o, b, h, ord)
             ORDER BY t, d, ord
         ), fresh AS (
             SELECT * FROM batch
             WHERE NOT EXISTS (SELECT 1 FROM receipts r WHERE r.tenant_id = batch.t AND r.decision_id = batch.d)
         ), counts AS (
             SELECT t, count(*) AS n FROM fresh GROUP BY t
         ), grown AS (
             INSERT INTO receipt_logs AS l (tenant_id, size)
             SELECT t, n FROM counts ORDER BY t
             ON CONFLICT (tenant_id) DO UPDATE SET size = l.size + EXCLUDED.size, updated_at = now()
             RETURNING tenant_id AS t, size
         )
         INSERT INTO receipts (tenant_id, leaf_index, decision_id, kind, subject, outcome, body, leaf_hash)
         SELECT f.t, g.size - c.n + row_number() OVER (PARTITION BY f.t ORDER BY f.ord) - 1,
                f.d, f.k, f.s, f.o, f.b, f.h
         FROM fresh f JOIN counts c USING (t) JOIN grown g USING (t)",
    )
    .bind(&tenants)
    .bind(&ids)
    .bind(&kinds)
    .bind(&subjects)
    .bind(&outcomes)
    .bind(&bodies)
    .bind(&hashes)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
