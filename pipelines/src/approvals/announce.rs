//! Telling decision-stream subscribers when a request is answered or expires, whichever
//! engine answered it: every engine follows the NOTIFY its answer sent and streams
//! `{"type": "approval", "data": <the request>}` to the tenant's subscribers.

use std::sync::Arc;

use portcullis_engine::TenantId;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::answered::{follow_answers, Heard};
use super::get;
use crate::policy_service::DecisionBus;

pub async fn stream_answers(pool: PgPool, bus: Arc<DecisionBus>, cancel: CancellationToken) {
    let (listener, mut rx) = follow_answers(pool.clone(), cancel.clone());
    while let Some(heard) = tokio::select! {
        heard = rx.recv() => heard,
        _ = cancel.cancelled() => None,
    } {
        // Subscribers watch live; one who missed an answer reads it from the API.
        let Heard::Answered(id) = heard else {
            continue;
        };
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
