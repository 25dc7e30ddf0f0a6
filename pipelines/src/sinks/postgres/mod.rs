//! Postgres: the system of record. Connection and migrations, the event path's sink, the tenant
//! registry, dead letters, the decision log, bundle activations.

mod activations;
mod api_decisions;
pub mod config;
pub mod copy_binary;
mod dead_letters;
pub mod error_codes;
pub mod notifications;
mod registry;
mod sink;
mod tables;

use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Postgres;

pub use activations::{insert_activation, known_revisions};
pub use api_decisions::{insert_api_decisions, ApiDecisionRow, ApprovalLink};
pub use dead_letters::{list_dead_letters, DeadLetterFilter, DeadLetterRow};
pub use registry::{add_tenant, list_tenants, load_registry, RegistryError, TenantRow};
pub use sink::PgSink;
pub(crate) use tables::dead_letters::insert as insert_dead_letters;
pub use tables::{copy_in, STAGING_TABLES};

/// Errors that writing the same rows again cannot cure: Postgres refusing what they hold (data
/// exceptions, constraint violations, program limits such as an index row too large), or a
/// value the COPY encoding cannot carry.
pub fn refused(e: &sqlx::Error) -> bool {
    refused_for_content(e) || matches!(e, sqlx::Error::Encode(_))
}

use crate::config::PostgresConfig;

/// Errors Postgres raises for the data itself (data exceptions, constraint violations, program
/// limits such as an index row too large): retrying the same rows cannot succeed.
pub fn refused_for_content(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c.starts_with("22") || c.starts_with("23") || c == "54000")
}

/// The schema, embedded in the binary: `portcullis migrate` needs no source tree.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// What every pool of the engine's shares: at most `max` connections, and a bounded wait for one.
fn pool_options(max: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
}

pub async fn connect(cfg: &PostgresConfig) -> Result<PgPool, sqlx::Error> {
    pool_options(cfg.max_connections)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                sqlx::raw_sql(STAGING_TABLES).execute(conn).await?;
                Ok(())
            })
        })
        .connect(&cfg.url)
        .await
}

/// A pool of at most `max` connections, opened on first use and reopened after a failure (so
/// Postgres being away when it is made is not an error). Must be called within the tokio
/// runtime that will use it: the pool's upkeep runs there.
pub fn connect_lazy(cfg: &PostgresConfig, max: u32) -> Result<PgPool, sqlx::Error> {
    pool_options(max).connect_lazy(&cfg.url)
}

/// Creates the database if needed, applies pending migrations and makes sure the time partitions
/// for the coming months exist. Safe to run any number of times.
pub async fn migrate(cfg: &PostgresConfig) -> Result<PgPool, sqlx::Error> {
    if !Postgres::database_exists(&cfg.url).await? {
        Postgres::create_database(&cfg.url).await?;
    }
    let pool = connect(cfg).await?;
    MIGRATOR.run(&pool).await?;
    ensure_partitions(&pool).await?;
    Ok(pool)
}

/// Monthly partitions from last month to three months ahead.
pub async fn ensure_partitions(pool: &PgPool) -> Result<(), sqlx::Error> {
    for table in ["events", "decisions", "api_decisions"] {
        sqlx::query(
            "SELECT portcullis_ensure_partitions($1::regclass, now() - interval '1 month', 5)",
        )
        .bind(table)
        .execute(pool)
        .await?;
    }
    Ok(())
}
