//! Segment rules and segment policy versions in Postgres.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use portcullis_engine::distribution::{
    PolicySigner, SegmentId, SegmentPolicy, SegmentRule, Segmentation, SignedEnvelope,
    SEGMENT_POLICY_PROTOCOL, SEGMENT_POLICY_TYPE,
};
use portcullis_engine::TenantId;
use sqlx::types::Json;
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    #[error("tenant {0} is not registered (add it with `portcullis tenant add`)")]
    UnknownTenant(String),
    #[error("a segment policy needs at least one Rego module")]
    NoModules,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23503")
}

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
#[derive(Debug, Clone)]
pub struct PublishedVersion {
    pub tenant: TenantId,
    pub segment: SegmentId,
    pub version: u64,
    pub digest: String,
    pub envelope: SignedEnvelope,
    pub published_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Numbers, signs and stores the next version of a segment (creating the segment on its first
/// version), in one transaction: the segment's row is locked, so concurrent publishes get
/// consecutive versions. The version is then waiting to be sent (`sent_at` NULL).
pub async fn publish_version(
    pool: &PgPool,
    new: NewVersion,
    signer: &PolicySigner,
) -> Result<PublishedVersion, DistributionError> {
    if new.modules.is_empty() {
        return Err(DistributionError::NoModules);
    }
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
    let version: i64 = sqlx::query_scalar(
        "UPDATE segments SET latest_version = latest_version + 1
         WHERE tenant_id = $1 AND segment_id = $2 RETURNING latest_version",
    )
    .bind(new.tenant.as_str())
    .bind(new.segment.as_str())
    .fetch_one(&mut *tx)
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
    let digest = document.digest();
    let envelope = signer.sign(SEGMENT_POLICY_TYPE, document.to_payload());
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
    Ok(PublishedVersion {
        tenant: new.tenant,
        segment: new.segment,
        version: version as u64,
        digest,
        envelope,
        published_at: document.published_at,
        sent_at: None,
    })
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    tenant_id: String,
    segment_id: String,
    version: i64,
    digest: String,
    envelope: Json<SignedEnvelope>,
    published_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

impl VersionRow {
    /// `None` for a row whose ids no longer parse (edited by hand): skipped, not sent.
    fn into_published(self) -> Option<PublishedVersion> {
        Some(PublishedVersion {
            tenant: TenantId::parse(&self.tenant_id).ok()?,
            segment: SegmentId::parse(&self.segment_id).ok()?,
            version: u64::try_from(self.version).ok()?,
            digest: self.digest,
            envelope: self.envelope.0,
            published_at: self.published_at,
            sent_at: self.sent_at,
        })
    }
}

/// Versions published and not sent yet, oldest first per segment: what a restart sends.
pub async fn unsent_versions(
    pool: &PgPool,
    limit: i64,
) -> Result<Vec<PublishedVersion>, sqlx::Error> {
    let rows: Vec<VersionRow> = sqlx::query_as(
        "SELECT tenant_id, segment_id, version, digest, envelope, published_at, sent_at
         FROM segment_versions WHERE sent_at IS NULL
         ORDER BY tenant_id, segment_id, version LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(VersionRow::into_published)
        .collect())
}

/// Records that a version went out over MQTT (acknowledged by the broker).
pub async fn mark_sent(
    pool: &PgPool,
    tenant: &TenantId,
    segment: &SegmentId,
    version: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE segment_versions SET sent_at = coalesce(sent_at, now())
         WHERE tenant_id = $1 AND segment_id = $2 AND version = $3",
    )
    .bind(tenant.as_str())
    .bind(segment.as_str())
    .bind(version as i64)
    .execute(pool)
    .await?;
    Ok(())
}

/// Agents in `group` get `segment` (idempotent).
pub async fn add_segment_rule(
    pool: &PgPool,
    tenant: &TenantId,
    rule: &SegmentRule,
) -> Result<(), DistributionError> {
    sqlx::query(
        "INSERT INTO segment_rules (tenant_id, group_name, segment_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(&rule.group)
    .bind(rule.segment.as_str())
    .execute(pool)
    .await
    .map_err(|e| {
        if foreign_key_violation(&e) {
            DistributionError::UnknownTenant(tenant.to_string())
        } else {
            DistributionError::Db(e)
        }
    })?;
    Ok(())
}

/// Removes a rule; whether there was one.
pub async fn remove_segment_rule(
    pool: &PgPool,
    tenant: &TenantId,
    rule: &SegmentRule,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM segment_rules WHERE tenant_id = $1 AND group_name = $2 AND segment_id = $3",
    )
    .bind(tenant.as_str())
    .bind(&rule.group)
    .bind(rule.segment.as_str())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A tenant's segmentation rules.
pub async fn segmentation(pool: &PgPool, tenant: &TenantId) -> Result<Segmentation, sqlx::Error> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT group_name, segment_id FROM segment_rules WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_all(pool)
            .await?;
    Ok(Segmentation::new(rows.into_iter().filter_map(
        |(group, segment)| {
            Some(SegmentRule {
                group,
                segment: SegmentId::parse(&segment).ok()?,
            })
        },
    )))
}
