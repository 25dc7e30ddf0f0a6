//! Segmentation rules in Postgres: agents in a group get a segment's policy.

use chrono::{DateTime, Utc};
use portcullis_engine::distribution::{SegmentId, SegmentRule, Segmentation};
use portcullis_engine::TenantId;
use serde::Serialize;
use sqlx::PgPool;

use super::error::{foreign_key_violation, DistributionError};
use crate::records::TenantScope;

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

/// One rule, as listed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RuleRow {
    pub tenant_id: String,
    pub group_name: String,
    pub segment_id: String,
    pub created_at: DateTime<Utc>,
}

/// The rules of the tenants in `scope`, by tenant, group and segment.
pub async fn list_rules(pool: &PgPool, scope: &TenantScope) -> Result<Vec<RuleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tenant_id, group_name, segment_id, created_at FROM segment_rules
         WHERE $1::text[] IS NULL OR tenant_id = ANY($1)
         ORDER BY tenant_id, group_name, segment_id",
    )
    .bind(scope.ids())
    .fetch_all(pool)
    .await
}
