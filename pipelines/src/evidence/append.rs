//! Appending receipts to their tenants' logs, inside the caller's transaction.
//!
//! First the batch's tenants' log rows are locked (in name order, so two batches holding the
//! same tenants cannot deadlock) until the transaction ends: leaf indexes then follow commit
//! order and two writers never share one. Then one statement, whose snapshot sees every
//! receipt committed before the lock was granted: receipts whose decision has one already (a
//! redelivery, even one another engine wrote a moment ago) are skipped; each log row is grown
//! by its new receipts; they go in at the indexes the growth made room for.

use sqlx::PgConnection;

use super::ReceiptRow;

pub async fn append_receipts(
    conn: &mut PgConnection,
    rows: &[&ReceiptRow],
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
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
