//! External trust signals over HTTP (docs/signals.md). Sending needs `signal:<tenant>` (or
//! `admin:<tenant>`, `admin`) for every signal's tenant; reading needs `read:<tenant>`.
//!
//! `POST /v1/signals`   one signal, or `[…]` up to `signals.max_batch`; each is taken or
//!                      refused with its reason (`{"accepted": n, "refused": [{index, reason}]}`)
//! `GET  /v1/signals[?tenant_id=&subject=&active=&limit=]`  newest first

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use portcullis_engine::access::Permission;
use portcullis_engine::signals::Signal;
use serde_json::{json, Value as Json};
use uuid::Uuid;

use super::auth::Authorized;
use super::error::ApiError;
use super::query::QueryParams;
use super::records::{db_error, read_scope};
use super::State;
use crate::signals::{list_signals, refresh_board, store_signals, SignalQuery};

pub(super) async fn send(
    state: web::Data<State>,
    caller: Authorized,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Some(board) = state.signals.clone() else {
        return Err(ApiError::unavailable(
            "signals_disabled",
            "trust signals are off (signals.enabled = false)",
        ));
    };
    let value: Json = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let items = match value {
        Json::Array(items) => items,
        one => vec![one],
    };
    let max = state.signals_config.max_batch;
    if items.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_signals",
            format!("at most {max} signals at once (signals.max_batch)"),
        ));
    }
    let now = Utc::now();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let checked = Signal::from_json(item, now).map_err(|e| e.to_string());
        let allowed = checked.and_then(|s| {
            if caller.0.allows(Permission::Signal, &s.tenant) {
                Ok(s)
            } else {
                Err(format!(
                    "token {:?} may not send signals about tenant {}",
                    caller.0.name, s.tenant
                ))
            }
        });
        match allowed {
            Ok(signal) => {
                // Keyed by the sending token too: one tool cannot replace (and so cancel)
                // another's signal by reusing its source and id.
                let sender = caller
                    .0
                    .token_id
                    .map_or_else(|| "anonymous".to_owned(), |id| id.to_string());
                let key = crate::signals::keyed(&signal)
                    .map(|k| format!("http:{sender}:{k}"))
                    .unwrap_or_else(|| format!("http:{}", Uuid::now_v7()));
                // The same signal twice in one batch: the later one counts.
                accepted.retain(|(k, _)| k != &key);
                accepted.push((key, signal));
            }
            Err(reason) => refused.push(json!({"index": index, "reason": reason})),
        }
    }
    store_signals(&state.pool, &accepted, "http")
        .await
        .map_err(db_error)?;
    if !accepted.is_empty() {
        // This engine applies them at once; the others at their next refresh.
        if let Err(e) = refresh_board(&state.pool, &board).await {
            tracing::warn!(error = %e, "cannot reload trust signals now; the refresh will");
        }
    }
    let m = &state.stats.metrics.signals;
    m.with_label_values(&["http", "accepted"])
        .inc_by(accepted.len() as u64);
    m.with_label_values(&["http", "refused"])
        .inc_by(refused.len() as u64);
    let status = if accepted.is_empty() && !refused.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(json!({
        "accepted": accepted.len(),
        "refused": refused,
    })))
}

pub(super) async fn list(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(
        req.query_string(),
        &["tenant_id", "subject", "active", "limit"],
    )?;
    let q = SignalQuery {
        tenants: read_scope(&caller, p.text("tenant_id").as_deref())?,
        subject: p.text("subject"),
        active: p.flag("active")?.unwrap_or(true),
        limit: p.limit(50)?,
    };
    let rows = list_signals(&state.pool, &q).await.map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}
