//! The decision API's decision log: `api_decisions`, written in batches.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use sqlx::PgPool;
use uuid::Uuid;

use super::csv::{api_decisions_csv, API_DECISION_COLUMNS};
use super::writer::{copy_in, stage_and_insert};

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
    pub eval_micros: u64,
    pub decided_at: DateTime<Utc>,
    /// Not a column: about how large the row is (its request body), to bound batches.
    pub size_hint: usize,
}

/// Writes `rows` in one transaction; a decision already logged (same id) is skipped. Returns
/// the rows newly stored.
///
/// Decision ids are fresh random UUIDs, so a batch normally holds none already stored: it is
/// COPYed straight into the table, the cheapest write Postgres has (this log takes a row per
/// query). Only a batch written again after an unclear failure meets its own rows; that COPY
/// fails whole on the primary key, and the batch goes through a staging table and
/// `ON CONFLICT DO NOTHING` instead.
pub async fn insert_api_decisions(
    pool: &PgPool,
    rows: &[ApiDecisionRow],
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let csv = api_decisions_csv(rows);
    let mut conn = pool.acquire().await?;
    let straight =
        format!("COPY api_decisions ({API_DECISION_COLUMNS}) FROM STDIN WITH (FORMAT csv)");
    match copy_in(&mut conn, &straight, &csv).await {
        Err(e) if is_unique_violation(&e) => {}
        done => return done,
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let stored = stage_and_insert(&mut tx, "api_decisions", API_DECISION_COLUMNS, &csv).await?;
    tx.commit().await?;
    Ok(stored)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.code().as_deref() == Some("23505"))
}
