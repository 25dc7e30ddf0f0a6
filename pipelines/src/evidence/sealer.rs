//! Sealing: a tenant's receipts written since its last checkpoint get their tree hashes
//! stored and a new checkpoint signed, in one transaction.
//!
//! Before signing, the sealer rebuilds the tree's right edge at the last checkpoint from the
//! stored hashes and checks that it still gives the signed root, and that each new receipt's
//! leaf hash is its body's: a log that shrank, whose stored edge changed, or whose new
//! receipts do not match their hashes is never signed again (a log must not sign two
//! inconsistent checkpoints). It says so, loudly, and stays refused until an operator looks.
//! A change deeper in the sealed part (an old receipt's body) does not stop sealing: the
//! checkpoints already signed expose it to `verify`.

use std::collections::BTreeMap;

use chrono::Utc;
use portcullis_engine::evidence::{
    leaf_hash, log_origin, sign_checkpoint, CheckpointBody, Frontier, Hash, HashReader, LogKey,
    EMPTY_HASH,
};
use sqlx::{PgConnection, PgPool};

use super::store::{fetch_hashes, latest_checkpoint};
use super::EvidenceStoreError;

/// Most receipts one seal takes: a large backlog is sealed over several checkpoints, each a
/// transaction of bounded size.
pub const MAX_SEAL: u64 = 100_000;

/// A checkpoint just signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    pub tenant: String,
    pub size: u64,
    pub root: Hash,
}

pub struct Sealer {
    pool: PgPool,
    key: LogKey,
    origin_prefix: String,
}

impl Sealer {
    pub fn new(pool: PgPool, key: LogKey, origin_prefix: &str) -> Self {
        Self {
            pool,
            key,
            origin_prefix: origin_prefix.to_owned(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Seals what `tenant`'s log holds beyond its last checkpoint (up to [`MAX_SEAL`]
    /// receipts). `None` when there is nothing to seal, or another engine is sealing it.
    pub async fn seal(&self, tenant: &str) -> Result<Option<Sealed>, EvidenceStoreError> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(hashtext('portcullis.receipt_log'), hashtext($1))",
        )
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            return Ok(None);
        }
        // Committed receipts: a writer holds the row until its receipts commit.
        let Some(size): Option<i64> =
            sqlx::query_scalar("SELECT size FROM receipt_logs WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let size = size as u64;
        let last = latest_checkpoint(&mut tx, tenant).await?;
        let (sealed, signed_root) = last
            .as_ref()
            .map_or((0, EMPTY_HASH), |c| (c.size as u64, c.root_hash()));
        if size < sealed {
            return Err(refused(
                tenant,
                format!("its log holds {size} receipts, but a checkpoint of {sealed} was signed: it was rolled back"),
            ));
        }
        if size == sealed {
            return Ok(None);
        }
        let mut frontier = frontier_at(&mut tx, tenant, sealed).await?;
        if frontier.root() != signed_root {
            return Err(refused(
                tenant,
                format!("its stored hashes no longer give the root signed at size {sealed}: the log was altered"),
            ));
        }
        let end = size.min(sealed + MAX_SEAL);
        let leaves: Vec<(i64, Vec<u8>, String)> = sqlx::query_as(
            "SELECT leaf_index, leaf_hash, body FROM receipts
             WHERE tenant_id = $1 AND leaf_index >= $2 AND leaf_index < $3 ORDER BY leaf_index",
        )
        .bind(tenant)
        .bind(sealed as i64)
        .bind(end as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut completed = Vec::with_capacity(2 * leaves.len());
        for (n, (index, hash, body)) in leaves.into_iter().enumerate() {
            let expected = sealed + n as u64;
            let hash: [u8; 32] = hash.try_into().map_err(|_| {
                refused(
                    tenant,
                    format!("receipt {index} has a leaf hash that is not 32 bytes"),
                )
            })?;
            if index as u64 != expected {
                return Err(refused(
                    tenant,
                    format!("receipt {expected} is missing from its log"),
                ));
            }
            if leaf_hash(body.as_bytes()).0 != hash {
                return Err(refused(
                    tenant,
                    format!("receipt {index} does not hash to its leaf hash"),
                ));
            }
            frontier.push_recording(Hash(hash), &mut completed);
        }
        if frontier.size() != end {
            return Err(refused(
                tenant,
                format!(
                    "receipts {} to {} are missing from its log",
                    frontier.size(),
                    end - 1
                ),
            ));
        }
        store_hashes(&mut tx, tenant, &completed).await?;
        let body = CheckpointBody {
            origin: log_origin(&self.origin_prefix, tenant),
            size: end,
            root: frontier.root(),
            // Never before the last checkpoint, whichever engine's clock signed that one: the
            // verifier reads signing order from these times.
            time: last
                .as_ref()
                .map_or(Utc::now(), |c| Utc::now().max(c.signed_at)),
        };
        let note = sign_checkpoint(&body, &self.key)?;
        sqlx::query(
            "INSERT INTO receipt_checkpoints (tenant_id, size, root, note, signed_by, signed_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant)
        .bind(end as i64)
        .bind(&body.root.0[..])
        .bind(&note)
        .bind(self.key.label())
        .bind(body.time)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Sealed {
            tenant: tenant.to_owned(),
            size: end,
            root: body.root,
        }))
    }
}

/// The right edge of `tenant`'s tree of `size` leaves, from its stored hashes.
pub async fn frontier_at(
    conn: &mut PgConnection,
    tenant: &str,
    size: u64,
) -> Result<Frontier, EvidenceStoreError> {
    let indexes = Frontier::indexes(size);
    let reader = fetch_hashes(conn, tenant, &indexes).await?;
    let hashes = reader.read_hashes(&indexes).map_err(|_| {
        refused(
            tenant,
            format!("stored hashes of its tree at size {size} are missing: the log was altered"),
        )
    })?;
    Ok(Frontier::resume(size, hashes)?)
}

/// Stores the completed subtrees as one run per level (each level's nodes are consecutive).
async fn store_hashes(
    conn: &mut PgConnection,
    tenant: &str,
    completed: &[(u8, u64, Hash)],
) -> Result<(), EvidenceStoreError> {
    let mut runs: BTreeMap<u8, (u64, Vec<u8>)> = BTreeMap::new();
    for &(level, node, hash) in completed {
        let (first, bytes) = runs.entry(level).or_insert_with(|| (node, Vec::new()));
        debug_assert_eq!(
            *first + (bytes.len() / 32) as u64,
            node,
            "a level's nodes are consecutive"
        );
        bytes.extend_from_slice(&hash.0);
    }
    let levels: Vec<i16> = runs.keys().map(|&l| i16::from(l)).collect();
    let firsts: Vec<i64> = runs.values().map(|(f, _)| *f as i64).collect();
    let hashes: Vec<&[u8]> = runs.values().map(|(_, b)| b.as_slice()).collect();
    sqlx::query(
        "INSERT INTO receipt_hashes (tenant_id, level, first_node, hashes)
         SELECT $1, l, f, h FROM UNNEST($2::int2[], $3::int8[], $4::bytea[]) AS x(l, f, h)",
    )
    .bind(tenant)
    .bind(&levels)
    .bind(&firsts)
    .bind(&hashes)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if crate::sinks::postgres::error_codes::unique_violation(&e) {
            refused(
                tenant,
                "hashes for receipts past its last checkpoint are stored already: the log was altered".into(),
            )
        } else {
            e.into()
        }
    })?;
    Ok(())
}

fn refused(tenant: &str, why: String) -> EvidenceStoreError {
    EvidenceStoreError::Refused(format!(
        "not signing a checkpoint for tenant {tenant}: {why}; `portcullis evidence export` and `portcullis verify` show what changed"
    ))
}
