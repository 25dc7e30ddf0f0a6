//! Reading the signals that last into the board: at start, after this engine took some, and
//! every `signals.refresh_ms` (signals other engines took; expiries).

use std::time::Duration;

use chrono::Utc;
use portcullis_actors::SignalBoard;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::store::lasting;

pub async fn refresh_board(pool: &PgPool, board: &SignalBoard) -> Result<usize, sqlx::Error> {
    let signals = lasting(pool, Utc::now()).await?;
    let n = signals.len();
    board.replace(signals);
    Ok(n)
}

pub async fn run_refresh(
    pool: PgPool,
    board: std::sync::Arc<SignalBoard>,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        if let Err(e) = refresh_board(&pool, &board).await {
            tracing::warn!(error = %e, "cannot read trust signals; keeping the last ones");
        }
    }
}
