//! Reading a tenant's log from Postgres: stored hashes by their Go sumdb index, checkpoints,
//! keys.

use chrono::{DateTime, Utc};
use portcullis_engine::evidence::{split_stored_hash_index, Hash, MapReader};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

/// The columns of [`CheckpointRow`], in its order.
pub(super) const CHECKPOINT_COLUMNS: &str = "tenant_id, size, root, note, signed_by, signed_at";

/// One signed checkpoint.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CheckpointRow {
    pub tenant_id: String,
    pub size: i64,
    pub root: Vec<u8>,
    pub note: String,
    pub signed_by: String,
    pub signed_at: DateTime<Utc>,
}

impl CheckpointRow {
    pub fn root_hash(&self) -> Hash {
        Hash(self.root.as_slice().try_into().unwrap_or([0; 32]))
    }
}

/// A key that has signed checkpoints.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct KeyRow {
    pub key_label: String,
    pub public_key: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// The stored hashes at `indexes` (Go sumdb layout) of `tenant`'s log; an index with no row is
/// absent from the reader, which a proof then reports.
pub async fn fetch_hashes(
    conn: &mut PgConnection,
    tenant: &str,
    indexes: &[u64],
) -> Result<MapReader, sqlx::Error> {
    let mut levels = Vec::with_capacity(indexes.len());
    let mut nodes = Vec::with_capacity(indexes.len());
    let mut wanted = Vec::with_capacity(indexes.len());
    for &i in indexes {
        let (level, node) = split_stored_hash_index(i);
        levels.push(i16::from(level));
        nodes.push(node as i64);
        wanted.push(i as i64);
    }
    // Each node from the run of its level that starts at or before it, if the run reaches it.
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT x.i, substring(r.hashes FROM ((x.node - r.first_node) * 32 + 1)::int FOR 32)
         FROM UNNEST($2::int2[], $3::int8[], $4::int8[]) AS x(level, node, i)
         JOIN LATERAL (
             SELECT first_node, hashes FROM receipt_hashes h
             WHERE h.tenant_id = $1 AND h.level = x.level AND h.first_node <= x.node
             ORDER BY h.first_node DESC LIMIT 1
         ) r ON x.node < r.first_node + length(r.hashes) / 32",
    )
    .bind(tenant)
    .bind(&levels)
    .bind(&nodes)
    .bind(&wanted)
    .fetch_all(&mut *conn)
    .await?;
    Ok(MapReader(
        rows.into_iter()
            .filter_map(|(i, h)| Some((i as u64, Hash(h.try_into().ok()?))))
            .collect(),
    ))
}

/// The largest checkpoint of `tenant`.
pub async fn latest_checkpoint(
    conn: &mut PgConnection,
    tenant: &str,
) -> Result<Option<CheckpointRow>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM receipt_checkpoints WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1"
    )))
    .bind(tenant)
    .fetch_optional(&mut *conn)
    .await
}

/// The smallest checkpoint of `tenant` that covers index `index` (its size is above it).
pub async fn checkpoint_covering(
    conn: &mut PgConnection,
    tenant: &str,
    index: u64,
) -> Result<Option<CheckpointRow>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM receipt_checkpoints WHERE tenant_id = $1 AND size > $2 ORDER BY size LIMIT 1"
    )))
    .bind(tenant)
    .bind(index as i64)
    .fetch_optional(&mut *conn)
    .await
}

/// The checkpoint of `tenant` of exactly `size`.
pub async fn checkpoint_of_size(
    conn: &mut PgConnection,
    tenant: &str,
    size: u64,
) -> Result<Option<CheckpointRow>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM receipt_checkpoints WHERE tenant_id = $1 AND size = $2"
    )))
    .bind(tenant)
    .bind(size as i64)
    .fetch_optional(&mut *conn)
    .await
}

/// Every key, oldest first.
pub async fn list_keys(pool: &PgPool) -> Result<Vec<KeyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT key_label, public_key, created_at, retired_at FROM evidence_keys ORDER BY created_at, key_label",
    )
    .fetch_all(pool)
    .await
}

/// Records `public_key` (labelled `label`) as a signing key, if it is not yet.
pub async fn register_key(pool: &PgPool, label: &str, public_key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO evidence_keys (key_label, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(label)
    .bind(public_key)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks the key `label` retired now (it stays, so what it signed still verifies).
pub async fn retire_key(pool: &PgPool, label: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE evidence_keys SET retired_at = now() WHERE key_label = $1 AND retired_at IS NULL",
    )
    .bind(label)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
