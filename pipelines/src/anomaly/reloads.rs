//! Model lines learn of their changes: a training session started or ended, or a model version
//! trained (migration 0011 NOTIFYs `tenant/scope` at commit), and that tenant and scope's
//! anomaly-model actor reads its model and session again.

use std::sync::Arc;

use portcullis_actors::{EntityDirectory, ModelActor, Reload};
use portcullis_engine::anomaly::{ModelKey, ModelScope};
use portcullis_engine::TenantId;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::PgModelStore;
use crate::sinks::postgres::notifications::{heard, Heard};

pub type ModelDirectory = EntityDirectory<ModelActor<PgModelStore>>;

const CHANNEL: &str = "portcullis_anomaly_models";

/// Runs until `cancel` fires. After the listening connection is made again, every live model
/// line reloads: a change made while it was down was not heard.
pub async fn run_model_reloads(
    pool: PgPool,
    models: Arc<ModelDirectory>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut notices = heard(pool, CHANNEL, cancel.clone());
    while let Some(reload) = notices.recv().await {
        if cancel.is_cancelled() {
            break;
        }
        let keys = match reload {
            Heard::Payload(payload) => match parse(&payload) {
                Some(key) => vec![key],
                None => {
                    warn!(payload, "unreadable anomaly model notice");
                    continue;
                }
            },
            Heard::Reconnected => models.live_keys(),
        };
        for key in keys {
            match models.send(&key, Reload).await {
                Ok(Ok(())) => info!(model = %key, "anomaly model line changed; reloaded"),
                Ok(Err(e)) => warn!(model = %key, error = %e, "anomaly model not reloaded"),
                Err(e) => warn!(model = %key, error = %e, "anomaly model actor unavailable"),
            }
        }
    }
    Ok(())
}

fn parse(payload: &str) -> Option<ModelKey> {
    let (tenant, scope) = payload.split_once('/')?;
    Some(ModelKey {
        tenant: TenantId::parse(tenant).ok()?,
        scope: ModelScope::parse(scope).ok()?,
    })
}
