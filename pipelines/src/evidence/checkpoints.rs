//! The engine's checkpoint loop: every tenant whose log has receipts past its last
//! checkpoint is sealed once `checkpoint_receipts` are waiting or `checkpoint_interval_ms`
//! has passed since its last checkpoint. Engines sharing a database share the work: a tenant
//! being sealed by one is skipped by the others.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use super::{EvidenceConfig, Sealer};
use crate::telemetry::stats::Stats;

/// How often the loop looks: a quarter of the interval, within these bounds.
const LOOK_MIN: Duration = Duration::from_millis(50);
const LOOK_MAX: Duration = Duration::from_secs(1);
/// A refused tenant is looked at again this much later (it stays refused until repaired).
const REFUSED_RETRY: Duration = Duration::from_secs(60);

pub async fn run_checkpoints(
    sealer: Sealer,
    cfg: EvidenceConfig,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) {
    let interval = Duration::from_millis(cfg.checkpoint_interval_ms);
    let look = (interval / 4).clamp(LOOK_MIN, LOOK_MAX);
    let mut refused_until: HashMap<String, tokio::time::Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(look) => {}
        }
        let due = match due_tenants(&sealer, interval, cfg.checkpoint_receipts).await {
            Ok(due) => due,
            Err(e) => {
                warn!(error = %e, "cannot read which receipt logs need a checkpoint; trying again");
                continue;
            }
        };
        for tenant in due {
            if refused_until
                .get(&tenant)
                .is_some_and(|t| *t > tokio::time::Instant::now())
            {
                continue;
            }
            match sealer.seal(&tenant).await {
                Ok(Some(sealed)) => {
                    debug!(tenant, size = sealed.size, "checkpoint signed");
                    stats
                        .metrics
                        .checkpoints_signed
                        .with_label_values(&[&tenant])
                        .inc();
                }
                Ok(None) => {}
                Err(super::EvidenceStoreError::Refused(why)) => {
                    error!(tenant, "{why}");
                    stats
                        .metrics
                        .checkpoints_refused
                        .with_label_values(&[&tenant])
                        .inc();
                    refused_until.insert(tenant, tokio::time::Instant::now() + REFUSED_RETRY);
                }
                Err(e) => warn!(tenant, error = %e, "checkpoint not signed; trying again"),
            }
        }
    }
}

/// Tenants with receipts past their last checkpoint that are due one.
async fn due_tenants(
    sealer: &Sealer,
    interval: Duration,
    receipts: u64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT l.tenant_id FROM receipt_logs l
         LEFT JOIN LATERAL (
             SELECT size, signed_at FROM receipt_checkpoints c
             WHERE c.tenant_id = l.tenant_id ORDER BY size DESC LIMIT 1
         ) last ON true
         WHERE l.size <> coalesce(last.size, 0)
           AND (l.size - coalesce(last.size, 0) >= $1
                OR last.signed_at IS NULL
                OR last.signed_at <= now() - make_interval(secs => $2))
         ORDER BY l.tenant_id",
    )
    .bind(receipts as i64)
    .bind(interval.as_secs_f64())
    .fetch_all(sealer.pool())
    .await
}
