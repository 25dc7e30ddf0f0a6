//! Every `protection.tick_ms`: observe each unit's arrivals, move its level, record changes
//! (and every `sample_secs` the load, for the chart); every `refresh_ms`: read the units again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use portcullis_actors::ProtectionBoard;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::store::{load_board, prune_samples, record_tick};
use super::ProtectionConfig;

pub async fn run_ticker(
    pool: PgPool,
    board: Arc<ProtectionBoard>,
    config: ProtectionConfig,
    engine: String,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(config.tick_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // An interval's first tick is at once: taken here, so the first observation covers a
    // whole tick (a few arrivals over a near-zero span would read as a huge rate).
    tick.tick().await;
    // Arrivals counted before the ticker ran (a backlog judged at start-up) belong to no tick.
    board.reset_arrivals();
    let refresh = Duration::from_millis(config.refresh_ms);
    let sample_every = Duration::from_secs(config.sample_secs);
    let (mut last_tick, mut last_refresh, mut last_sample) =
        (Instant::now(), Instant::now(), Instant::now());
    let mut last_prune = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        if last_refresh.elapsed() >= refresh {
            last_refresh = Instant::now();
            if let Err(e) = load_board(&pool, &board).await {
                tracing::warn!(error = %e, "cannot read protection units; keeping the last ones");
            }
        }
        let elapsed = last_tick.elapsed().as_secs_f64();
        last_tick = Instant::now();
        let seen = board.tick(elapsed);
        for u in seen
            .iter()
            .filter_map(|u| u.transition.as_ref().map(|t| (u, t)))
        {
            let (unit, t) = u;
            tracing::info!(tenant = %unit.tenant, unit = %unit.unit, from = %t.from, to = %t.to,
                rho = t.rho, lambda = t.lambda, mu = t.mu, "protection level changed");
        }
        let sample = last_sample.elapsed() >= sample_every;
        if sample {
            last_sample = Instant::now();
        }
        if let Err(e) = record_tick(&pool, &engine, Utc::now(), &seen, sample).await {
            tracing::warn!(error = %e, "cannot record protection levels; the levels still apply");
        }
        if last_prune.elapsed() >= Duration::from_secs(3600) {
            last_prune = Instant::now();
            let before = Utc::now() - chrono::Duration::hours(config.keep_samples_hours as i64);
            if let Err(e) = prune_samples(&pool, before).await {
                tracing::warn!(error = %e, "cannot prune protection samples");
            }
        }
    }
}
