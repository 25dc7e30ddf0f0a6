//! Activations and refusals become metrics at once and `bundle_activations` rows soon after.

use std::sync::Arc;
use std::time::Duration;

use portcullis_actors::{Activation, ActivationObserver};
use portcullis_engine::TenantId;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::sinks::postgres::insert_activation;
use crate::telemetry::stats::Stats;

pub struct ActivationRecorder {
    stats: Arc<Stats>,
    // Unbounded: activations are rare (one per bundle change), and the loader must not block.
    tx: mpsc::UnboundedSender<Activation>,
}

impl ActivationRecorder {
    pub fn new(stats: Arc<Stats>) -> (Self, mpsc::UnboundedReceiver<Activation>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { stats, tx }, rx)
    }
}

impl ActivationRecorder {
    fn set_healthy(&self, tenant: &TenantId, healthy: bool) {
        let gauge = &self.stats.metrics.bundle_healthy;
        gauge
            .with_label_values(&[tenant.as_str()])
            .set(i64::from(healthy));
    }
}

impl ActivationObserver for ActivationRecorder {
    fn activated(&self, a: &Activation, healthy: bool) {
        info!(tenant = %a.tenant, revision = %a.revision, digest = %a.digest, "bundle activated");
        let m = &self.stats.metrics;
        m.bundle_activations
            .with_label_values(&[a.tenant.as_str()])
            .inc();
        self.set_healthy(&a.tenant, healthy);
        let _ = self.tx.send(a.clone());
    }

    fn recovered(&self, tenant: &TenantId) {
        info!(%tenant, "bundle healthy again (the refused change was reverted)");
        self.set_healthy(tenant, true);
    }

    fn rejected(&self, tenant: &TenantId, error: &str) {
        warn!(%tenant, %error, "bundle refused; the last good revision, if any, keeps serving");
        let m = &self.stats.metrics;
        m.bundle_rejections
            .with_label_values(&[tenant.as_str()])
            .inc();
        self.set_healthy(tenant, false);
    }
}

/// Writes activations to Postgres in order, retrying while it is unavailable. On shutdown,
/// what is already queued is still written (briefly; the engine's exit waits for it).
pub async fn record_activations(
    pool: PgPool,
    mut rx: mpsc::UnboundedReceiver<Activation>,
    engine: String,
    cancel: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            a = rx.recv() => a,
            _ = cancel.cancelled() => rx.try_recv().ok(),
        };
        let Some(activation) = next else { return };
        let mut delay = Duration::from_millis(100);
        while let Err(e) = insert_activation(&pool, &activation, &engine).await {
            if cancel.is_cancelled() {
                warn!(tenant = %activation.tenant, error = %e, "activation not recorded: shutting down");
                break;
            }
            warn!(tenant = %activation.tenant, error = %e, "cannot record a bundle activation; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
