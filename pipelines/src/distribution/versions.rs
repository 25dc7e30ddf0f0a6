//! Segment policy versions in Postgres: published (numbered, checked, signed) in one
//! transaction, then sent by the segment actor, which marks them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use portcullis_engine::distribution::{
    check_segment_policy, PolicySigner, SegmentId, SegmentKey, SegmentPolicy, SignedEnvelope,
    SEGMENT_POLICY_PROTOCOL, SEGMENT_POLICY_TYPE,
};
use portcullis_engine::{PolicyError, TenantId};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use super::error::{foreign_key_violation, DistributionError};

/// A new version of a segment's policy, as an administrator publishes it.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub tenant: TenantId,
    pub segment: SegmentId,
    pub modules: BTreeMap<String, String>,
    pub data: serde_json::Value,
    /// Who publishes: `cli`, `token:<name>`.
    pub published_by: String,
}

/// A version as stored: numbered, signed, and sent or not yet.
#[derive(Debug, Clone, Serialize)]
pub struct PublishedVersion {
    pub tenant: TenantId,
    pub segment: SegmentId,
    pub version: u64,
    pub digest: String,
    pub key_id: String,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
    /// When the broker acknowledged it; `None`: waiting to be sent.
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub envelope: SignedEnvelope,
}

impl PublishedVersion {
    pub fn key(&self) -> SegmentKey {
        SegmentKey {
            tenant: self.tenant.clone(),
            segment: self.segment.clone(),
        }
    }
}

/// Checks, numbers, signs and stores the next version of a segment (creating the segment on
/// its first version), in one transaction: the segment's row is locked, so concurrent publishes
/// get consecutive versions. The version then waits to be sent (`sent_at` NULL), and the
/// insert's trigger wakes the engine's sender when the transaction commits. A policy equal to
/// the latest version's (same digest, same signing key) makes no new version.
pub async fn publish_version(
    pool: &PgPool,
    new: NewVersion,
    signer: &PolicySigner,
    max_bytes: usize,
) -> Result<Publish, DistributionError> {
    if new.modules.is_empty() {
        return Err(DistributionError::NoModules);
    }
    // Compiling is CPU work: off the async threads.
    let checked = {
        let (segment, modules, data) = (new.segment.clone(), new.modules.clone(), new.data.clone());
        tokio::task::spawn_blocking(move || check_segment_policy(&segment, &modules, &data))
            .await
            .map_err(|_| DistributionError::Policy(PolicyError::Panicked))?
    };
    checked.map_err(DistributionError::Policy)?;
    let unknown = |e: sqlx::Error| {
        if foreign_key_violation(&e) {
            DistributionError::UnknownTenant(new.tenant.to_string())
        } else {
            DistributionError::Db(e)
        }
    };
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO segments (tenant_id, segment_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(new.tenant.as_str())
    .bind(new.segment.as_str())
    .execute(&mut *tx)
    .await
    .map_err(unknown)?;
    let latest: i64 = sqlx::query_scalar(
        "SELECT latest_version FROM segments WHERE tenant_id = $1 AND segment_id = $2 FOR UPDATE",
    )
    .bind(new.tenant.as_str())
    .bind(new.segment.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let digest = policy_digest(&new.modules, &new.data);
    if latest > 0 {
        // The same policy again (a repeated click, a re-run script) makes no new version,
        // unless the signing key changed: after a rotation, publishing again re-signs it.
        let key = SegmentKey {
            tenant: new.tenant.clone(),
            segment: new.segment.clone(),
        };
        let current = version_in(&mut tx, &key, latest as u64).await?;
        if let Some(current) = current.filter(|c| c.digest == digest && c.key_id == signer.key_id())
        {
            return Ok(Publish {
                version: current,
                created: false,
            });
        }
    }
    let version = latest + 1;
    sqlx::query("UPDATE segments SET latest_version = $3 WHERE tenant_id = $1 AND segment_id = $2")
        .bind(new.tenant.as_str())
        .bind(new.segment.as_str())
        .bind(version)
        .execute(&mut *tx)
        .await?;
    let document = SegmentPolicy {
        protocol: SEGMENT_POLICY_PROTOCOL,
        tenant_id: new.tenant.clone(),
        segment_id: new.segment.clone(),
        version: version as u64,
        modules: new.modules,
        data: new.data,
        // Microseconds, as Postgres keeps them: the stored time and the signed one agree.
        published_at: DateTime::from_timestamp_micros(Utc::now().timestamp_micros())
            .unwrap_or_else(Utc::now),
    };
    debug_assert_eq!(document.digest(), digest);
    let envelope = signer.sign(SEGMENT_POLICY_TYPE, document.to_payload());
    let size = serde_json::to_vec(&envelope).map_or(usize::MAX, |b| b.len());
    if size > max_bytes {
        // Dropping the transaction rolls the number back.
        return Err(DistributionError::TooLarge {
            size,
            max: max_bytes,
        });
    }
    sqlx::query(
        "INSERT INTO segment_versions (tenant_id, segment_id, version, modules, data, digest,
                                       envelope, key_id, published_by, published_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new.tenant.as_str())
    .bind(new.segment.as_str())
    .bind(version)
    .bind(Json(&document.modules))
    .bind(Json(&document.data))
    .bind(&digest)
    .bind(Json(&envelope))
    .bind(signer.key_id())
    .bind(&new.published_by)
    .bind(document.published_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Publish {
        version: PublishedVersion {
            tenant: new.tenant,
            segment: new.segment,
            version: version as u64,
            digest,
            key_id: signer.key_id().to_owned(),
            published_by: new.published_by,
            published_at: document.published_at,
            sent_at: None,
            envelope,
        },
        created: true,
    })
}

/// The digest a segment policy document of these modules and data has.
fn policy_digest(modules: &BTreeMap<String, String>, data: &serde_json::Value) -> String {
    SegmentPolicy {
        protocol: SEGMENT_POLICY_PROTOCOL,
        tenant_id: TenantId::parse("x").expect("a valid tenant id"),
        segment_id: SegmentId::parse("x").expect("a valid segment id"),
        version: 0,
        modules: modules.clone(),
        data: data.clone(),
        published_at: DateTime::<Utc>::UNIX_EPOCH,
    }
    .digest()
}

/// What a publish did: a new version, or none because the policy is the latest's.
#[derive(Debug, Clone)]
pub struct Publish {
    pub version: PublishedVersion,
    /// `false`: the policy equals the latest version's, which is returned.
    pub created: bool,
}

const VERSION_COLUMNS: &str =
    "tenant_id, segment_id, version, digest, key_id, published_by, published_at, sent_at, envelope";

#[derive(sqlx::FromRow)]
struct VersionRow {
    tenant_id: String,
    segment_id: String,
    version: i64,
    digest: String,
    key_id: String,
    published_by: String,
    published_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    envelope: Json<SignedEnvelope>,
}

impl VersionRow {
    /// `None` for a row whose ids no longer parse (edited by hand): skipped, not sent.
    fn into_published(self) -> Option<PublishedVersion> {
        Some(PublishedVersion {
            tenant: TenantId::parse(&self.tenant_id).ok()?,
            segment: SegmentId::parse(&self.segment_id).ok()?,
            version: u64::try_from(self.version).ok()?,
            digest: self.digest,
            key_id: self.key_id,
            published_by: self.published_by,
            published_at: self.published_at,
            sent_at: self.sent_at,
            envelope: self.envelope.0,
        })
    }
}

/// Segments with versions published and not sent yet: what a sweep wakes.
pub async fn segments_with_unsent(pool: &PgPool) -> Result<Vec<SegmentKey>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT tenant_id, segment_id FROM segment_versions WHERE sent_at IS NULL",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(t, s)| {
            Some(SegmentKey {
                tenant: TenantId::parse(&t).ok()?,
                segment: SegmentId::parse(&s).ok()?,
            })
        })
        .collect())
}

/// A segment's versions published and not sent yet, oldest first: what its actor sends.
pub async fn unsent_versions(
    pool: &PgPool,
    key: &SegmentKey,
) -> Result<Vec<PublishedVersion>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    unsent_versions_in(&mut conn, key).await
}

pub(super) async fn unsent_versions_in(
    conn: &mut PgConnection,
    key: &SegmentKey,
) -> Result<Vec<PublishedVersion>, sqlx::Error> {
    let rows: Vec<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM segment_versions
         WHERE tenant_id = $1 AND segment_id = $2 AND sent_at IS NULL ORDER BY version"
    )))
    .bind(key.tenant.as_str())
    .bind(key.segment.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(VersionRow::into_published)
        .collect())
}

/// The latest version of a segment that was sent (0: none).
pub async fn sent_through(pool: &PgPool, key: &SegmentKey) -> Result<u64, sqlx::Error> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT max(version) FROM segment_versions
         WHERE tenant_id = $1 AND segment_id = $2 AND sent_at IS NOT NULL",
    )
    .bind(key.tenant.as_str())
    .bind(key.segment.as_str())
    .fetch_one(pool)
    .await?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

/// Records that a version went out (acknowledged by the broker).
pub async fn mark_sent(pool: &PgPool, key: &SegmentKey, version: u64) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    mark_sent_in(&mut conn, key, version).await
}

pub(super) async fn mark_sent_in(
    conn: &mut PgConnection,
    key: &SegmentKey,
    version: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE segment_versions SET sent_at = coalesce(sent_at, clock_timestamp())
         WHERE tenant_id = $1 AND segment_id = $2 AND version = $3",
    )
    .bind(key.tenant.as_str())
    .bind(key.segment.as_str())
    .bind(version as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A segment's versions, newest first, at most `limit`, below `before` when given.
pub async fn list_versions(
    pool: &PgPool,
    key: &SegmentKey,
    before: Option<u64>,
    limit: i64,
) -> Result<Vec<PublishedVersion>, sqlx::Error> {
    let rows: Vec<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM segment_versions
         WHERE tenant_id = $1 AND segment_id = $2 AND version < $3
         ORDER BY version DESC LIMIT $4"
    )))
    .bind(key.tenant.as_str())
    .bind(key.segment.as_str())
    .bind(before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(VersionRow::into_published)
        .collect())
}

async fn version_in(
    conn: &mut PgConnection,
    key: &SegmentKey,
    version: u64,
) -> Result<Option<PublishedVersion>, sqlx::Error> {
    let row: Option<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM segment_versions
         WHERE tenant_id = $1 AND segment_id = $2 AND version = $3"
    )))
    .bind(key.tenant.as_str())
    .bind(key.segment.as_str())
    .bind(version.min(i64::MAX as u64) as i64)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.and_then(VersionRow::into_published))
}

/// One version with its modules and data, as published.
#[derive(Debug, Clone, Serialize)]
pub struct VersionDetail {
    #[serde(flatten)]
    pub version: PublishedVersion,
    pub modules: BTreeMap<String, String>,
    pub data: serde_json::Value,
    /// The signed envelope exactly as sent to agents.
    pub envelope: SignedEnvelope,
}

pub async fn version_detail(
    pool: &PgPool,
    key: &SegmentKey,
    version: u64,
) -> Result<Option<VersionDetail>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        version: VersionRow,
        modules: Json<BTreeMap<String, String>>,
        data: Json<serde_json::Value>,
    }
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS}, modules, data FROM segment_versions
         WHERE tenant_id = $1 AND segment_id = $2 AND version = $3"
    )))
    .bind(key.tenant.as_str())
    .bind(key.segment.as_str())
    .bind(version.min(i64::MAX as u64) as i64)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|r| {
        let version = r.version.into_published()?;
        Some(VersionDetail {
            envelope: version.envelope.clone(),
            version,
            modules: r.modules.0,
            data: r.data.0,
        })
    }))
}
