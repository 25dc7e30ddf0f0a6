//! `protection_units`, `protection_transitions` and `protection_samples`.

use chrono::{DateTime, Utc};
use portcullis_actors::{ProtectionBoard, UnitConfig, UnitObserved};
use portcullis_engine::protection::Selector;
use portcullis_engine::TenantId;
use serde::Serialize;
use serde_json::Value as Json;
use sqlx::PgPool;

use crate::records::TenantScope;

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct UnitRow {
    pub tenant_id: String,
    pub unit: String,
    pub selector: String,
    pub capacity_per_sec: f64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TransitionRow {
    pub tenant_id: String,
    pub unit: String,
    pub from_level: String,
    pub to_level: String,
    pub lambda: f64,
    pub mu: f64,
    /// `null` when infinite (work arrived and nothing served it).
    #[serde(serialize_with = "finite_or_null")]
    pub rho: f64,
    pub at: DateTime<Utc>,
    pub engine: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SampleRow {
    pub at: DateTime<Utc>,
    pub engine: String,
    pub lambda: f64,
    pub mu: f64,
    #[serde(serialize_with = "finite_or_null")]
    pub rho: f64,
    pub level: String,
}

/// ρ (or any rate) as JSON: `null` when infinite, which JSON cannot write.
pub fn finite_json(x: f64) -> Json {
    if x.is_finite() {
        Json::from(x)
    } else {
        Json::Null
    }
}

fn finite_or_null<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&finite_json(*v), s)
}

/// Adds or changes a unit.
pub async fn set_unit(
    pool: &PgPool,
    tenant: &TenantId,
    unit: &str,
    selector: &Selector,
    capacity_per_sec: f64,
) -> Result<UnitRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO protection_units (tenant_id, unit, selector, capacity_per_sec)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, unit) DO UPDATE
         SET selector = EXCLUDED.selector, capacity_per_sec = EXCLUDED.capacity_per_sec,
             updated_at = now()
         RETURNING tenant_id, unit, selector, capacity_per_sec, updated_at",
    )
    .bind(tenant.as_str())
    .bind(unit)
    .bind(selector.as_str())
    .bind(capacity_per_sec)
    .fetch_one(pool)
    .await
}

/// Removes a unit; `false` when there was none.
pub async fn remove_unit(
    pool: &PgPool,
    tenant: &TenantId,
    unit: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM protection_units WHERE tenant_id = $1 AND unit = $2")
        .bind(tenant.as_str())
        .bind(unit)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn list_units(pool: &PgPool, tenants: &TenantScope) -> Result<Vec<UnitRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tenant_id, unit, selector, capacity_per_sec, updated_at FROM protection_units
         WHERE ($1::text[] IS NULL OR tenant_id = ANY($1))
         ORDER BY tenant_id, unit",
    )
    .bind(tenants.ids())
    .fetch_all(pool)
    .await
}

/// Reads every unit into `board`. A row that no longer parses (edited by hand) is skipped
/// with a warning rather than stopping the others.
pub async fn load_board(pool: &PgPool, board: &ProtectionBoard) -> Result<usize, sqlx::Error> {
    let rows = list_units(pool, &TenantScope::All).await?;
    let configs: Vec<UnitConfig> = rows
        .into_iter()
        .filter_map(|r| {
            let parsed = TenantId::parse(&r.tenant_id)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    Selector::parse(&r.selector)
                        .map(|s| (t, s))
                        .map_err(|e| e.to_string())
                });
            match parsed {
                Ok((tenant, selector)) => Some(UnitConfig {
                    tenant,
                    name: r.unit,
                    selector,
                    capacity_per_sec: r.capacity_per_sec,
                }),
                Err(e) => {
                    tracing::warn!(tenant = %r.tenant_id, unit = %r.unit, error = %e, "protection unit skipped");
                    None
                }
            }
        })
        .collect();
    let n = configs.len();
    board.configure(configs);
    Ok(n)
}

/// Records a tick's transitions and, when `sample`, every unit's load.
pub async fn record_tick(
    pool: &PgPool,
    engine: &str,
    at: DateTime<Utc>,
    seen: &[UnitObserved],
    sample: bool,
) -> Result<(), sqlx::Error> {
    let changed: Vec<&UnitObserved> = seen.iter().filter(|u| u.transition.is_some()).collect();
    let rows: Vec<&UnitObserved> = if sample {
        seen.iter().collect()
    } else {
        Vec::new()
    };
    if changed.is_empty() && rows.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    if !changed.is_empty() {
        let col = |f: fn(&UnitObserved) -> String| changed.iter().map(|u| f(u)).collect::<Vec<_>>();
        let num = |f: fn(&UnitObserved) -> f64| changed.iter().map(|u| f(u)).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO protection_transitions
                 (tenant_id, unit, from_level, to_level, lambda, mu, rho, at, engine)
             SELECT t, u, f, l, la, m, r, $8, $9
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[],
                         $6::float8[], $7::float8[]) AS x(t, u, f, l, la, m, r)",
        )
        .bind(col(|u| u.tenant.to_string()))
        .bind(col(|u| u.unit.to_string()))
        .bind(col(|u| {
            u.transition
                .as_ref()
                .map_or("", |t| t.from.as_str())
                .to_owned()
        }))
        .bind(col(|u| u.level.as_str().to_owned()))
        .bind(num(|u| {
            u.transition.as_ref().map_or(u.lambda, |t| t.lambda)
        }))
        .bind(num(|u| u.transition.as_ref().map_or(u.mu, |t| t.mu)))
        .bind(num(|u| u.transition.as_ref().map_or(u.rho, |t| t.rho)))
        .bind(at)
        .bind(engine)
        .execute(&mut *tx)
        .await?;
    }
    if !rows.is_empty() {
        let col = |f: fn(&UnitObserved) -> String| rows.iter().map(|u| f(u)).collect::<Vec<_>>();
        let num = |f: fn(&UnitObserved) -> f64| rows.iter().map(|u| f(u)).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO protection_samples (tenant_id, unit, at, engine, lambda, mu, rho, level)
             SELECT t, u, $6, $7, la, m, r, l
             FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[],
                         $8::text[]) AS x(t, u, la, m, r, l)
             ON CONFLICT DO NOTHING",
        )
        .bind(col(|u| u.tenant.to_string()))
        .bind(col(|u| u.unit.to_string()))
        .bind(num(|u| u.lambda))
        .bind(num(|u| u.mu))
        .bind(num(|u| u.rho))
        .bind(at)
        .bind(engine)
        .bind(col(|u| u.level.as_str().to_owned()))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Drops samples older than `before`.
pub async fn prune_samples(pool: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM protection_samples WHERE at < $1")
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected())
}

pub async fn list_transitions(
    pool: &PgPool,
    tenants: &TenantScope,
    limit: i64,
) -> Result<Vec<TransitionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tenant_id, unit, from_level, to_level, lambda, mu, rho, at, engine
         FROM protection_transitions
         WHERE ($1::text[] IS NULL OR tenant_id = ANY($1))
         ORDER BY at DESC
         LIMIT $2",
    )
    .bind(tenants.ids())
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A unit's samples since `since`, oldest first, at most 2,000.
pub async fn list_samples(
    pool: &PgPool,
    tenant: &TenantId,
    unit: &str,
    since: DateTime<Utc>,
) -> Result<Vec<SampleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at, engine, lambda, mu, rho, level FROM (
             SELECT at, engine, lambda, mu, rho, level FROM protection_samples
             WHERE tenant_id = $1 AND unit = $2 AND at >= $3
             ORDER BY at DESC LIMIT 2000) s
         ORDER BY at",
    )
    .bind(tenant.as_str())
    .bind(unit)
    .bind(since)
    .fetch_all(pool)
    .await
}
