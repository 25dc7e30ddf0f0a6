//! What the API gives about a receipt: the receipt, its inclusion proof against a checkpoint,
//! and the engine's own check of both; and consistency proofs between checkpoints. A client
//! that trusts only the log's public key re-checks them (docs/evidence.md).

use chrono::{DateTime, Utc};
use portcullis_engine::evidence::{
    check_record, checkpoint::verifiers, indexes_needed, leaf_hash, open_checkpoint, prove_record,
    prove_tree, HashText,
};
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

use super::store::{
    checkpoint_covering, checkpoint_of_size, fetch_hashes, latest_checkpoint, list_keys,
    CheckpointRow, CHECKPOINT_COLUMNS,
};
use super::{exact_receipt, EvidenceStoreError};

/// A checkpoint as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointView {
    pub tenant: String,
    pub size: u64,
    pub root: HashText,
    pub signed_by: String,
    pub signed_at: DateTime<Utc>,
    /// The signed note, exactly as signed.
    pub note: String,
}

impl From<&CheckpointRow> for CheckpointView {
    fn from(c: &CheckpointRow) -> Self {
        Self {
            tenant: c.tenant_id.clone(),
            size: c.size as u64,
            root: HashText(c.root_hash().0),
            signed_by: c.signed_by.clone(),
            signed_at: c.signed_at,
            note: c.note.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ReceiptProof {
    pub tenant: String,
    pub leaf_index: u64,
    pub decision_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    /// The receipt's exact bytes, as JSON.
    pub receipt: Box<RawValue>,
    pub leaf_hash: HashText,
    /// The checkpoint the proof leads to; `null` while the receipt awaits its first one.
    pub checkpoint: Option<CheckpointView>,
    /// RFC 6962 audit path from the leaf to the checkpoint's root.
    pub inclusion_proof: Vec<HashText>,
    /// `verified`, `pending` (no checkpoint yet) or `failed`.
    pub status: &'static str,
    /// Why it failed.
    pub problem: Option<String>,
}

/// Which receipt.
#[derive(Debug, Clone, Copy)]
pub enum ReceiptKey {
    Index(u64),
    Decision(Uuid),
}

/// The receipt `key` of `tenant` with its proof against the checkpoint of `at_size` (or the
/// first that covers it); `None` if there is no such receipt.
pub async fn receipt_with_proof(
    pool: &PgPool,
    tenant: &str,
    key: ReceiptKey,
    at_size: Option<u64>,
) -> Result<Option<ReceiptProof>, EvidenceStoreError> {
    let mut conn = pool.acquire().await?;
    let (index, id) = match key {
        ReceiptKey::Index(i) => (Some(i as i64), None),
        ReceiptKey::Decision(d) => (None, Some(d)),
    };
    let row: Option<(i64, Uuid, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT leaf_index, decision_id, recorded_at, body FROM receipts
         WHERE tenant_id = $1 AND (leaf_index = $2 OR decision_id = $3)",
    )
    .bind(tenant)
    .bind(index)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((leaf_index, decision_id, recorded_at, body)) = row else {
        return Ok(None);
    };
    let leaf_index = leaf_index as u64;
    let hash = leaf_hash(body.as_bytes());
    let checkpoint = match at_size {
        Some(size) if size > leaf_index => {
            let found = checkpoint_of_size(&mut conn, tenant, size).await?;
            if found.is_none() {
                return Err(EvidenceStoreError::Refused(format!(
                    "tenant {tenant}'s log has no checkpoint of size {size}"
                )));
            }
            found
        }
        Some(size) => {
            return Err(EvidenceStoreError::Refused(format!(
                "receipt {leaf_index} is not in the tree of size {size}"
            )))
        }
        None => checkpoint_covering(&mut conn, tenant, leaf_index).await?,
    };
    let receipt = exact_receipt(body);
    let mut proof = ReceiptProof {
        tenant: tenant.to_owned(),
        leaf_index,
        decision_id,
        recorded_at,
        receipt,
        leaf_hash: hash.into(),
        checkpoint: checkpoint.as_ref().map(CheckpointView::from),
        inclusion_proof: Vec::new(),
        status: "pending",
        problem: None,
    };
    let Some(checkpoint) = checkpoint else {
        return Ok(Some(proof));
    };
    let size = checkpoint.size as u64;
    let needed = indexes_needed(|r| prove_record(size, leaf_index, r));
    let hashes = fetch_hashes(&mut conn, tenant, &needed).await?;
    let problem = match prove_record(size, leaf_index, &hashes) {
        Err(e) => Some(format!("the log's stored hashes cannot prove it ({e})")),
        Ok(path) => {
            proof.inclusion_proof = path.iter().map(|&h| h.into()).collect();
            let keys: Vec<String> = list_keys(pool)
                .await?
                .into_iter()
                .map(|k| k.public_key)
                .collect();
            let signed =
                verifiers(&keys).and_then(|known| open_checkpoint(&checkpoint.note, &known));
            match signed {
                Err(e) => Some(format!("its checkpoint does not verify: {e}")),
                Ok(opened) if opened.body.root != checkpoint.root_hash() => {
                    Some("its checkpoint's stored root is not the one signed".into())
                }
                Ok(opened) => check_record(&path, size, opened.body.root, leaf_index, hash)
                    .err()
                    .map(|_| {
                        "the receipt is not the one the log signed at its index (edited)".into()
                    }),
            }
        }
    };
    proof.status = if problem.is_some() {
        "failed"
    } else {
        "verified"
    };
    proof.problem = problem;
    Ok(Some(proof))
}

/// The RFC 6962 consistency proof that `tenant`'s tree of size `to` extends the one of
/// size `from`.
pub async fn consistency_proof(
    pool: &PgPool,
    tenant: &str,
    from: u64,
    to: u64,
) -> Result<Vec<HashText>, EvidenceStoreError> {
    if from == 0 || from > to {
        return Err(EvidenceStoreError::Refused(format!(
            "a consistency proof needs 1 <= from <= to (got from {from}, to {to})"
        )));
    }
    let mut conn = pool.acquire().await?;
    // Only trees the log has signed: beyond them there is nothing to prove (and the index
    // arithmetic of sizes near 2^64 would overflow).
    let signed = latest_checkpoint(&mut conn, tenant)
        .await?
        .map_or(0, |c| c.size as u64);
    if to > signed {
        return Err(EvidenceStoreError::Refused(format!(
            "tenant {tenant}'s largest checkpoint has size {signed}; no proof to size {to}"
        )));
    }
    let needed = indexes_needed(|r| prove_tree(to, from, r));
    let hashes = fetch_hashes(&mut conn, tenant, &needed).await?;
    let proof = prove_tree(to, from, &hashes).map_err(|e| {
        EvidenceStoreError::Refused(format!(
            "tenant {tenant}'s log has no stored tree of size {to} to prove ({e})"
        ))
    })?;
    Ok(proof.into_iter().map(HashText::from).collect())
}

/// Checkpoints of `tenants`, most recent first, up to `limit`, signed before `before`.
pub async fn list_checkpoints(
    pool: &PgPool,
    tenants: Option<&[String]>,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<CheckpointView>, sqlx::Error> {
    let rows: Vec<CheckpointRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM receipt_checkpoints
         WHERE ($1::text[] IS NULL OR tenant_id = ANY($1))
           AND ($2::timestamptz IS NULL OR signed_at < $2)
         ORDER BY signed_at DESC, tenant_id LIMIT $3"
    )))
    .bind(tenants)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(CheckpointView::from).collect())
}
