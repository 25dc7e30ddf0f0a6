//! Telling decision-stream subscribers when a request is answered or expires, whichever
//! engine answered it: every engine follows the NOTIFY its answer sent and streams
//! `{"type": "approval", "data": <the request>}` to the tenant's subscribers.

use std::sync::Arc;

use portcullis_engine::TenantId;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{get, APPROVALS_CHANNEL};
use crate::policy_service::DecisionBus;
use crate::sinks::postgres::notifications::{follow, Notice};

pub async fn stream_answers(pool: PgPool, bus: Arc<DecisionBus>, cancel: CancellationToken) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Uuid>();
    let listener = tokio::spawn(follow(
        pool.clone(),
        APPROVALS_CHANNEL,
        cancel.clone(),
        move |notice| match notice {
            Notice::Connected => true,
            Notice::Payload(p) => match Uuid::parse_str(&p) {
                Ok(id) => tx.send(id).is_ok(),
                Err(_) => true,
            },
        },
    ));
    while let Some(id) = tokio::select! {
        id = rx.recv() => id,
        _ = cancel.cancelled() => None,
    } {
        let row = match get(&pool, id).await {
            Ok(Some(row)) => row,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, %id, "cannot read an answered approval to stream it");
                continue;
            }
        };
        let Ok(tenant) = TenantId::parse(&row.tenant_id) else {
            continue;
        };
        if bus.wants(&tenant) {
            let message = json!({"type": "approval", "data": row}).to_string();
            bus.send(&tenant, message.into());
        }
    }
    listener.abort();
}
