//! `portcullis evidence export`: a tenant's receipts over a time range as one bundle file
//! (`portcullis_engine::evidence::bundle`), with everything needed to check them offline.
//!
//! The range is widened to whole checkpoints: it starts after the last checkpoint signed
//! before `from` and ends at the first signed after `to`, so every receipt in it is signed.
//! Receipts not yet under a checkpoint are left out and counted (the next is seconds away).

use std::io::Write;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use portcullis_engine::evidence::{
    indexes_needed, log_origin, prove_header, BundleCheckpoint, BundleHeader, BundleKey,
    BundleLine, HashText, BUNDLE_FORMAT,
};
use sqlx::{AssertSqlSafe, PgPool};

use super::store::{fetch_hashes, latest_checkpoint, list_keys, CheckpointRow, CHECKPOINT_COLUMNS};
use super::{exact_receipt, EvidenceStoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub first: u64,
    pub end: u64,
    pub lines: u64,
    pub checkpoints: usize,
    /// Receipts in the range written after the last checkpoint, so not in the bundle.
    pub unsealed: u64,
}

/// Writes `tenant`'s receipts recorded in `[from, to]` (either end open) to `out`, telling
/// `progress` how many receipt lines are written so far and how many there will be.
pub async fn export_bundle(
    pool: &PgPool,
    origin_prefix: &str,
    tenant: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    out: &mut impl Write,
    mut progress: impl FnMut(u64, u64),
) -> Result<Exported, EvidenceStoreError> {
    let mut conn = pool.acquire().await?;
    let Some(latest) = latest_checkpoint(&mut conn, tenant).await? else {
        return Err(EvidenceStoreError::NoReceipts(tenant.to_owned()));
    };
    let sealed = latest.size as u64;
    // Times become indexes through the checkpoints: receipts sealed by a checkpoint signed
    // before `from` were recorded before it, and all recorded by `to` are sealed by the
    // first checkpoint signed after it.
    let first: i64 = match from {
        None => 0,
        Some(from) => sqlx::query_scalar(
            "SELECT coalesce(max(size), 0) FROM receipt_checkpoints WHERE tenant_id = $1 AND signed_at < $2",
        )
        .bind(tenant)
        .bind(from)
        .fetch_one(&mut *conn)
        .await?,
    };
    let first = first as u64;
    let (end, last) = match to {
        Some(to) => {
            let end: Option<i64> = sqlx::query_scalar(
                "SELECT min(size) FROM receipt_checkpoints WHERE tenant_id = $1 AND signed_at >= $2",
            )
            .bind(tenant)
            .bind(to)
            .fetch_one(&mut *conn)
            .await?;
            let end = end.map_or(sealed, |e| e as u64);
            (end, end)
        }
        None => {
            let size: i64 =
                sqlx::query_scalar("SELECT size FROM receipt_logs WHERE tenant_id = $1")
                    .bind(tenant)
                    .fetch_one(&mut *conn)
                    .await?;
            (sealed, size as u64)
        }
    };
    if first >= end {
        return Err(EvidenceStoreError::Refused(format!(
            "tenant {tenant} has no signed receipts in that range (its last checkpoint covers receipts up to {})",
            sealed.saturating_sub(1)
        )));
    }
    let unsealed = last.saturating_sub(end);
    let listed: Vec<CheckpointRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM receipt_checkpoints
         WHERE tenant_id = $1
           AND ((size > $2 AND size <= $3)
                OR size = (SELECT max(size) FROM receipt_checkpoints WHERE tenant_id = $1 AND size <= $2)
                OR size = $4)
         ORDER BY size, signed_at"
    )))
    .bind(tenant)
    .bind(first as i64)
    .bind(end as i64)
    .bind(sealed as i64)
    .fetch_all(&mut *conn)
    .await?;
    let sizes: Vec<u64> = listed.iter().map(|c| c.size as u64).collect();
    let needed = indexes_needed(|r| prove_header(first, &sizes, r));
    let hashes = fetch_hashes(&mut conn, tenant, &needed).await?;
    let proofs = prove_header(first, &sizes, &hashes).map_err(|e| {
        EvidenceStoreError::Refused(format!(
            "the stored hashes of tenant {tenant}'s log before receipt {first} are missing ({e}): the log was altered; export from 0 to see what changed"
        ))
    })?;
    let keys = list_keys(pool)
        .await?
        .into_iter()
        .map(|k| BundleKey {
            key: k.public_key,
            created_at: Some(k.created_at),
            retired_at: k.retired_at,
        })
        .collect();
    let header = BundleHeader {
        format: BUNDLE_FORMAT.into(),
        tenant: tenant.to_owned(),
        origin: log_origin(origin_prefix, tenant),
        first,
        end,
        left: proofs.left,
        keys,
        checkpoints: listed
            .iter()
            .zip(proofs.consistency)
            .map(|(c, consistency)| BundleCheckpoint {
                note: c.note.clone(),
                consistency,
            })
            .collect(),
        exported_at: Utc::now(),
    };
    serde_json::to_writer(&mut *out, &header).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    // The log's leaves drive the lines: a leaf whose receipt is gone still has its line.
    let runs: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT first_node, hashes FROM receipt_hashes
         WHERE tenant_id = $1 AND level = 0
           AND first_node < $3 AND first_node + length(hashes) / 32 > $2
         ORDER BY first_node",
    )
    .bind(tenant)
    .bind(first as i64)
    .bind(end as i64)
    .fetch_all(&mut *conn)
    .await?;
    let total = end - first;
    let mut lines = 0u64;
    for (run_first, hashes) in runs {
        let run_first = run_first as u64;
        let from = run_first.max(first);
        let to = (run_first + (hashes.len() / 32) as u64).min(end);
        let mut bodies = sqlx::query_as::<_, (i64, String)>(
            "SELECT leaf_index, body FROM receipts
             WHERE tenant_id = $1 AND leaf_index >= $2 AND leaf_index < $3 ORDER BY leaf_index",
        )
        .bind(tenant)
        .bind(from as i64)
        .bind(to as i64)
        .fetch(&mut *conn);
        let mut next_body = bodies.try_next().await?;
        for index in from..to {
            let at = ((index - run_first) * 32) as usize;
            let body = match next_body.take() {
                Some((i, body)) if i as u64 == index => {
                    next_body = bodies.try_next().await?;
                    Some(body)
                }
                other => {
                    next_body = other;
                    None
                }
            };
            let line = BundleLine {
                index,
                tree_hash: HashText(hashes[at..at + 32].try_into().expect("32 bytes")),
                receipt: body.map(exact_receipt),
            };
            serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            lines += 1;
            if lines % 10_000 == 0 {
                progress(lines, total);
            }
        }
    }
    progress(lines, total);
    out.flush()?;
    Ok(Exported {
        first,
        end,
        lines,
        checkpoints: listed.len(),
        unsealed,
    })
}
