//! `portcullis dlq`: look at dead letters and re-drive them once their cause is fixed
//! (an account mapped, a tenant registered, a bundle repaired).

use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::engine;
use crate::postgres::{self, DeadLetterFilter, DeadLetterRow};
use crate::processor::{Inbound, Replayed};
use crate::stats::Stats;

pub async fn list(
    config: &Config,
    filter: &DeadLetterFilter,
) -> anyhow::Result<Vec<DeadLetterRow>> {
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot open Postgres")?;
    let rows = postgres::list_dead_letters(&pool, filter).await?;
    pool.close().await;
    Ok(rows)
}

/// Replays the selected dead letters one by one, oldest first, through the same decode, judge
/// and write path as live traffic. Must be called inside [`crate::runtime::block_on`].
pub async fn replay(
    config: &Config,
    filter: &DeadLetterFilter,
) -> anyhow::Result<Vec<(String, Replayed)>> {
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot open Postgres")?;
    let parts = engine::build(config, &pool, Arc::new(Stats::default())).await?;
    let mut done = Vec::new();
    for row in postgres::list_dead_letters(&pool, filter).await? {
        let inbound = Inbound {
            origin: row.origin(),
            payload: row.payload.clone(),
            received: std::time::Instant::now(),
        };
        let outcome = parts
            .processor
            .replay(&row.dead_letter_id, &inbound)
            .await?;
        done.push((row.dead_letter_id, outcome));
    }
    parts.directory.shutdown();
    pool.close().await;
    Ok(done)
}
