//! The decision API's decision log: `api_decisions`, written in batches.

use chrono::{DateTime, Utc};
use portcullis_engine::evidence::Receipt;
use serde_json::Value as Json;
use sqlx::{PgConnection, PgPool};

use crate::evidence::{append_receipts, ReceiptRow};
use uuid::Uuid;

/// One answered decision API query, as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiDecisionRow {
    pub decision_id: Uuid,
    pub tenant_id: String,
    pub path: String,
    /// The caller's input with the tenant's mask applied.
    pub input: Option<Json>,
    pub erased: Vec<String>,
    pub result: Option<Json>,
    pub bundle_revision: String,
    /// The bundle's content digest, for the receipt.
    pub policy_digest: std::sync::Arc<str>,
    pub eval_micros: u64,
    pub decided_at: DateTime<Utc>,
    /// Why the evaluation failed; `None` for a decision.
    pub error: Option<String>,
    /// Not a column: about how large the row is (its request body), to bound batches.
    pub size_hint: usize,
    /// The protection level of the decision's unit, when a configured unit covers it.
    pub protection_level: Option<portcullis_engine::protection::ProtectionLevel>,
    /// The approval request the decision opened or found, when its rule asked for one.
    pub approval: Option<ApprovalLink>,
}

/// A decision's approval request, and whether an approval of it let the decision through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApprovalLink {
    pub approval_id: Uuid,
    pub granted: bool,
}

/// Inserts `rows` in one transaction; a decision already logged (same id) is skipped. With
/// `receipts`, each decision (not each failure) gets its receipt in the same transaction.
pub async fn insert_api_decisions(
    pool: &PgPool,
    rows: &[ApiDecisionRow],
    receipts: bool,
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let logged = insert_rows(&mut tx, rows).await?;
    if receipts {
        let made: Vec<ReceiptRow> = rows
            .iter()
            .filter(|r| r.error.is_none())
            .map(|r| {
                let receipt = Receipt::of_query(
                    &r.tenant_id,
                    r.decision_id,
                    &r.path,
                    r.input.as_ref(),
                    r.result.as_ref(),
                    &r.bundle_revision,
                    &r.policy_digest,
                    r.decided_at,
                )
                .with_protection(r.protection_level);
                ReceiptRow::of(&match r.approval {
                    Some(link) if link.granted => receipt.granted_by(link.approval_id),
                    _ => receipt,
                })
            })
            .collect();
        append_receipts(&mut tx, &made.iter().collect::<Vec<_>>()).await?;
    }
    tx.commit().await?;
    Ok(logged)
}

async fn insert_rows(conn: &mut PgConnection, rows: &[ApiDecisionRow]) -> Result<u64, sqlx::Error> {
    let mut ids = Vec::with_capacity(rows.len());
    let mut tenants = Vec::with_capacity(rows.len());
    let mut paths = Vec::with_capacity(rows.len());
    let mut inputs = Vec::with_capacity(rows.len());
    let mut erased = Vec::with_capacity(rows.len());
    let mut results = Vec::with_capacity(rows.len());
    let mut revisions = Vec::with_capacity(rows.len());
    let mut micros = Vec::with_capacity(rows.len());
    let mut times = Vec::with_capacity(rows.len());
    let mut errors = Vec::with_capacity(rows.len());
    let mut approvals = Vec::with_capacity(rows.len());
    for r in rows {
        ids.push(r.decision_id);
        tenants.push(r.tenant_id.as_str());
        paths.push(r.path.as_str());
        // Absent (NULL) and JSON null differ: the text form keeps that apart through UNNEST.
        inputs.push(r.input.as_ref().map(Json::to_string));
        erased.push(text_array_literal(&r.erased));
        results.push(r.result.as_ref().map(Json::to_string));
        revisions.push(r.bundle_revision.as_str());
        micros.push(i32::try_from(r.eval_micros).unwrap_or(i32::MAX));
        times.push(r.decided_at);
        errors.push(r.error.as_deref());
        approvals.push(r.approval.map(|a| a.approval_id));
    }
    let done = sqlx::query(
        "INSERT INTO api_decisions
             (decision_id, tenant_id, path, input, erased, result, bundle_revision, eval_micros,
              decided_at, error, approval_id)
         SELECT d, t, p, i::jsonb, e::text[], r::jsonb, v, m, at, err, ap
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::int4[], $9::timestamptz[], $10::text[], $11::uuid[])
              AS x(d, t, p, i, e, r, v, m, at, err, ap)
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&tenants)
    .bind(&paths)
    .bind(&inputs)
    .bind(&erased)
    .bind(&results)
    .bind(&revisions)
    .bind(&micros)
    .bind(&times)
    .bind(&errors)
    .bind(&approvals)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// `items` as a Postgres array literal, `{"a","b"}`: UNNEST cannot take an array of arrays, so
/// each row's list travels as one text value and is cast back to `text[]` by Postgres's own
/// array reader. That cast is the cheapest way in (a JSON array unpacked by a subquery cost a
/// quarter of the statement's time per row). Every element is quoted, so commas, braces,
/// white space and the word NULL are taken as text; in quotes only `"` and `\` are escaped.
fn text_array_literal(items: &[String]) -> String {
    let mut out = String::with_capacity(2 + items.iter().map(|i| i.len() + 3).sum::<usize>());
    out.push('{');
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            if matches!(c, '"' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::text_array_literal;

    #[test]
    fn lists_become_array_literals_with_every_element_quoted() {
        let list = |items: &[&str]| {
            text_array_literal(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(list(&[]), "{}");
        assert_eq!(list(&["/input/a"]), r#"{"/input/a"}"#);
        assert_eq!(
            list(&["/input/a,b", "NULL", " x ", "{}"]),
            r#"{"/input/a,b","NULL"," x ","{}"}"#
        );
        assert_eq!(list(&[r#"say "hi" \ now"#]), r#"{"say \"hi\" \\ now"}"#);
        assert_eq!(list(&[""]), r#"{""}"#);
    }
}
