//! Model lines learn of their changes: a training session started or ended, or a model version
//! trained (migration 0011 NOTIFYs `tenant/scope` at commit), and that tenant and scope's
//! anomaly-model actor reads its model and session again.

use std::sync::Arc;

use portcullis_actors::{EntityDirectory, ModelActor, Reload};
use portcullis_engine::anomaly::{ModelKey, ModelScope};
use portcullis_engine::TenantId;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::PgModelStore;
use crate::sinks::postgres::notifications::{follow, Notice};

pub type ModelDirectory = EntityDirectory<ModelActor<PgModelStore>>;

const CHANNEL: &str = "portcullis_anomaly_models";

/// Runs until `cancel` fires. A change made while the listener was reconnecting reaches the
/// actor when it is next activated (it passivates after `actors.anomaly_model.idle_secs`).
pub async fn run_model_reloads(
    pool: PgPool,
    models: Arc<ModelDirectory>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(follow(
        pool,
        CHANNEL,
        cancel.clone(),
        move |notice| match notice {
            Notice::Payload(p) => tx.send(p).is_ok(),
            Notice::Connected => true,
        },
    ));
    loop {
        let payload = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            p = rx.recv() => match p {
                Some(p) => p,
                None => return Ok(()),
            },
        };
        let Some(key) = parse(&payload) else {
            warn!(payload, "unreadable anomaly model notice");
            continue;
        };
        match models.send(&key, Reload).await {
            Ok(Ok(())) => info!(model = %key, "anomaly model line changed; reloaded"),
            Ok(Err(e)) => warn!(model = %key, error = %e, "anomaly model not reloaded"),
            Err(e) => warn!(model = %key, error = %e, "anomaly model actor unavailable"),
        }
    }
}

fn parse(payload: &str) -> Option<ModelKey> {
    let (tenant, scope) = payload.split_once('/')?;
    Some(ModelKey {
        tenant: TenantId::parse(tenant).ok()?,
        scope: ModelScope::parse(scope).ok()?,
    })
}
