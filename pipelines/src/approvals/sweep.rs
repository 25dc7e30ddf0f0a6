//! Expiring unanswered requests: every `approvals.sweep_interval_ms`, on every engine (they
//! share the rows with SKIP LOCKED).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{expire_due, ApprovalsConfig};
use crate::telemetry::stats::Stats;

pub async fn run_expiry(
    pool: PgPool,
    config: ApprovalsConfig,
    receipts: bool,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) {
    // The first sweep one interval after the start: by then this engine's listeners follow
    // the answers, so agents are told of what it expires (an expiry is dated at its expiry,
    // which can be long before a first sweep after a stop).
    let every = Duration::from_millis(config.sweep_interval_ms);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        match expire_due(&pool, Utc::now(), receipts, None).await {
            Ok(expired) if !expired.is_empty() => {
                for row in &expired {
                    stats
                        .metrics
                        .approvals
                        .with_label_values(&[&row.tenant_id, "expired"])
                        .inc();
                }
                tracing::info!(
                    count = expired.len(),
                    "approval requests expired unanswered"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot expire approval requests; retrying"),
        }
    }
}
