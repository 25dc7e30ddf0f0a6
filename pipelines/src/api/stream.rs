//! `GET /v1/stream/decisions[?tenant_id=…]`: decisions as they are made, over a WebSocket, in
//! seed 001's message shapes. A subscriber too slow for the stream is told how many decisions
//! it missed (`{"type": "lagged", "missed": n}`), never left with a silent gap.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::Message;
use futures::StreamExt;
use portcullis_engine::access::Permission;
use portcullis_engine::TenantId;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::auth::{Authorized, WS_PROTOCOL};
use super::error::ApiError;
use super::State;

/// How often an open stream asks Postgres whether its token still holds, besides every change
/// the token listener reports (a backstop for a listener that was down).
const RECHECK_EVERY: Duration = Duration::from_secs(60);
/// No expiry: about a century.
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub(super) async fn decisions(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Payload,
    params: web::Query<HashMap<String, String>>,
    caller: Authorized,
) -> HttpResponse {
    let tenant = match params.get("tenant_id").map(|t| TenantId::parse(t)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return ApiError::bad_request(e.to_string()).response(),
    };
    let allowed = match &tenant {
        Some(t) => caller.require(Permission::Read, t),
        None => caller.require_admin("the stream of every tenant's decisions (no tenant_id)"),
    };
    if let Err(e) = allowed {
        return e.response();
    }
    let (mut response, mut session, mut incoming) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(e) => {
            return ApiError::bad_request(format!("a WebSocket upgrade is required here: {e}"))
                .response()
        }
    };
    if offers_protocol(&req) {
        // A browser that signed in with the subprotocol needs it accepted, or it drops the
        // connection.
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            header::HeaderValue::from_static(WS_PROTOCOL),
        );
    }
    let mut rx = state.bus.subscribe(tenant.as_ref());
    let cancel = state.cancel.clone();
    let metrics = state.stats.clone();
    // The token is checked again while the stream is open: a revoked, expired or narrowed
    // token ends it.
    let auth = state.auth.clone();
    let mut token_changes = auth.changes();
    let caller = caller.0.clone();
    let until_expiry = caller
        .expires_at
        .map(|at| (at - chrono::Utc::now()).to_std().unwrap_or_default())
        .unwrap_or(NEVER);
    actix_web::rt::spawn(async move {
        let expiry = tokio::time::sleep(until_expiry);
        tokio::pin!(expiry);
        let mut recheck = tokio::time::interval(RECHECK_EVERY);
        recheck.tick().await;
        let mut ended_by_token = false;
        let m = &metrics.metrics;
        m.stream_subscribers.inc();
        let hello = json!({
            "type": "connected",
            "message": "Decision stream ready",
            "tenant_id": tenant,
        });
        let mut open = session.text(hello.to_string()).await.is_ok();
        while open {
            tokio::select! {
                next = rx.recv() => match next {
                    Ok(text) => open = session.text(text.to_string()).await.is_ok(),
                    Err(RecvError::Lagged(missed)) => {
                        m.stream_lagged_messages.inc_by(missed);
                        let note = json!({
                            "type": "lagged",
                            "missed": missed,
                            "message": format!("this client was too slow: {missed} decisions were skipped; the decision logs in Postgres have them all"),
                        });
                        open = session.text(note.to_string()).await.is_ok();
                    }
                    Err(RecvError::Closed) => open = false,
                },
                msg = incoming.next() => match msg {
                    Some(Ok(Message::Ping(bytes))) => open = session.pong(&bytes).await.is_ok(),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => open = false,
                    Some(Ok(_)) => {} // the stream is one-way; anything else is ignored
                },
                _ = cancel.cancelled() => open = false,
                _ = &mut expiry => (open, ended_by_token) = (false, true),
                changed = token_changes.changed() => {
                    if changed.is_err() || !auth.still_valid(&caller).await {
                        (open, ended_by_token) = (false, true);
                    }
                }
                _ = recheck.tick() => {
                    if !auth.still_valid(&caller).await {
                        (open, ended_by_token) = (false, true);
                    }
                }
            }
        }
        m.stream_subscribers.dec();
        let reason = ended_by_token.then(|| actix_ws::CloseReason {
            code: actix_ws::CloseCode::Policy,
            description: Some("the token was revoked, expired or changed; sign in again".into()),
        });
        let _ = session.close(reason).await;
    });
    response
}

fn offers_protocol(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == WS_PROTOCOL)
}
