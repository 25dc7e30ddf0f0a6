//! `portcullis dlq`: look at dead letters and re-drive them once their cause is fixed
//! (an account mapped, a tenant registered, a bundle repaired).

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::path::{Inbound, Replayed};
use crate::runtime;
use crate::sinks::postgres::{self, DeadLetterFilter, DeadLetterRow};
use crate::telemetry::stats::Stats;

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
/// and write stages as live traffic. Must be called inside [`crate::runtime::block_on`].
pub async fn replay(
    config: &Config,
    filter: &DeadLetterFilter,
) -> anyhow::Result<Vec<(String, Replayed)>> {
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot open Postgres")?;
    let (parts, _activations) = runtime::build(config, &pool, Arc::new(Stats::default())).await?;
    let never = CancellationToken::new();
    let mut done = Vec::new();
    for row in postgres::list_dead_letters(&pool, filter).await? {
        let inbound = Inbound::new(row.origin(), row.payload.clone());
        let outcome = parts
            .path
            .replay(&row.dead_letter_id, &inbound, &never)
            .await
            .with_context(|| format!("cannot replay {}", row.dead_letter_id))?;
        done.push((row.dead_letter_id, outcome));
    }
    parts.shutdown();
    pool.close().await;
    Ok(done)
}
