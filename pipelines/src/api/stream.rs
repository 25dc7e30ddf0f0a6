//! `GET /v1/stream/decisions[?tenant_id=…]`: decisions as they are made, over a WebSocket, in
//! seed 001's message shapes. A subscriber too slow for the stream is told how many decisions
//! it missed (`{"type": "lagged", "missed": n}`), never left with a silent gap.

use std::collections::HashMap;

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
    actix_web::rt::spawn(async move {
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
            }
        }
        m.stream_subscribers.dec();
        let _ = session.close(None).await;
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
