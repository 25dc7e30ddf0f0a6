//! Each model line's settings (`anomaly_settings`): its anomaly threshold and trust half-life.
//! A line without a row uses the defaults.

use chrono::{DateTime, Utc};
use portcullis_engine::anomaly::{AnomalySettings, ModelScope};
use portcullis_engine::TenantId;
use serde::Serialize;
use sqlx::PgPool;

use super::TrainingError;
use crate::records::TenantScope;
use crate::sinks::postgres::error_codes::foreign_key_violation;

/// A line's settings as listed: `updated_*` are `None` for the defaults.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SettingsRow {
    pub tenant_id: String,
    pub scope: String,
    pub threshold: f64,
    pub trust_half_life_secs: u32,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<String>,
}

/// The settings of `tenant`'s `scope` line.
pub async fn line_settings(
    pool: &PgPool,
    tenant: &TenantId,
    scope: ModelScope,
) -> Result<AnomalySettings, sqlx::Error> {
    let row: Option<(f64, i32)> = sqlx::query_as(
        "SELECT threshold, trust_half_life_secs FROM anomaly_settings
         WHERE tenant_id = $1 AND scope = $2",
    )
    .bind(tenant.as_str())
    .bind(scope.as_str())
    .fetch_optional(pool)
    .await?;
    // The table's checks hold the same ranges as `AnomalySettings::new`.
    Ok(
        row.map_or_else(AnomalySettings::default, |(threshold, half_life)| {
            AnomalySettings {
                threshold,
                trust_half_life_secs: half_life as u32,
            }
        }),
    )
}

/// Sets the settings of `tenant`'s `scope` line; its engine's actor reloads them.
pub async fn set_line_settings(
    pool: &PgPool,
    tenant: &TenantId,
    scope: ModelScope,
    settings: AnomalySettings,
    by: &str,
) -> Result<SettingsRow, TrainingError> {
    let done: Result<StoredRow, _> = sqlx::query_as(
        "INSERT INTO anomaly_settings (tenant_id, scope, threshold, trust_half_life_secs, updated_by)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, scope) DO UPDATE
         SET threshold = EXCLUDED.threshold,
             trust_half_life_secs = EXCLUDED.trust_half_life_secs,
             updated_at = now(), updated_by = EXCLUDED.updated_by
         RETURNING tenant_id, scope, threshold, trust_half_life_secs, updated_at, updated_by",
    )
    .bind(tenant.as_str())
    .bind(scope.as_str())
    .bind(settings.threshold)
    .bind(settings.trust_half_life_secs as i32)
    .bind(by)
    .fetch_one(pool)
    .await;
    match done {
        Ok(row) => Ok(row.into_settings(&AnomalySettings::default())),
        Err(e) if foreign_key_violation(&e) => {
            Err(TrainingError::UnknownTenant(tenant.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Every line's settings for the tenants in `tenants` (registered ones), defaults included.
pub async fn list_settings(
    pool: &PgPool,
    tenants: &TenantScope,
) -> Result<Vec<SettingsRow>, sqlx::Error> {
    let rows: Vec<StoredRow> = sqlx::query_as(
        "SELECT t.tenant_id, sc.scope, s.threshold, s.trust_half_life_secs, s.updated_at,
                s.updated_by
         FROM tenants t
         CROSS JOIN (VALUES ('cloudtrail'), ('device')) AS sc(scope)
         LEFT JOIN anomaly_settings s ON s.tenant_id = t.tenant_id AND s.scope = sc.scope
         WHERE ($1::text[] IS NULL OR t.tenant_id = ANY($1))
         ORDER BY t.tenant_id, sc.scope",
    )
    .bind(tenants.ids())
    .fetch_all(pool)
    .await?;
    let defaults = AnomalySettings::default();
    Ok(rows
        .into_iter()
        .map(|r| r.into_settings(&defaults))
        .collect())
}

/// A line as read, NULL where it has no row of its own.
#[derive(sqlx::FromRow)]
struct StoredRow {
    tenant_id: String,
    scope: String,
    threshold: Option<f64>,
    trust_half_life_secs: Option<i32>,
    updated_at: Option<DateTime<Utc>>,
    updated_by: Option<String>,
}

impl StoredRow {
    fn into_settings(self, defaults: &AnomalySettings) -> SettingsRow {
        SettingsRow {
            tenant_id: self.tenant_id,
            scope: self.scope,
            threshold: self.threshold.unwrap_or(defaults.threshold),
            trust_half_life_secs: self
                .trust_half_life_secs
                .map_or(defaults.trust_half_life_secs, |h| h as u32),
            updated_at: self.updated_at,
            updated_by: self.updated_by,
        }
    }
}
