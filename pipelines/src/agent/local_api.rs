//! The agent's local decision API, as seed 001's (OPA-shaped), on loopback for applications on
//! the device: `POST /v1/data/segments/{segment}/{rule…}` with `{"input": …}` answers
//! `{"result": …}` (no `result` when undefined); `GET /v1/status` says what is applied.

use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use portcullis_engine::distribution::SegmentEnforcer;
use serde_json::json;

pub(super) type Shared = Arc<Mutex<SegmentEnforcer>>;

/// Largest request body read.
const MAX_BODY: usize = 1024 * 1024;

pub(super) fn start(
    listen: &str,
    enforcer: Shared,
) -> std::io::Result<(ServerHandle, std::net::SocketAddr)> {
    let data = web::Data::new(enforcer);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route("/v1/status", web::get().to(status))
            .route("/v1/data/segments/{path:.*}", web::post().to(decide))
            .default_service(web::to(|| async {
                HttpResponse::NotFound().json(json!({"code": "not_found",
                    "message": "ask POST /v1/data/segments/{segment}/{rule} or GET /v1/status"}))
            }))
    })
    .workers(1)
    .disable_signals()
    .bind(listen)?;
    let addr = *server.addrs().first().expect("bound");
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok((handle, addr))
}

async fn status(enforcer: web::Data<Shared>) -> HttpResponse {
    let applied = enforcer.lock().unwrap_or_else(|e| e.into_inner()).applied();
    HttpResponse::Ok().json(json!({ "applied": applied }))
}

async fn decide(
    enforcer: web::Data<Shared>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let input = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) => v.get("input").cloned().unwrap_or(json!({})),
            Err(e) => {
                return HttpResponse::BadRequest().json(json!({"code": "invalid_parameter",
                    "message": format!("the body must be JSON like {{\"input\": {{...}}}}: {e}")}))
            }
        }
    };
    let answer = enforcer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .evaluate(&path, &input);
    match answer {
        Ok(Some(result)) => HttpResponse::Ok().json(json!({ "result": result })),
        Ok(None) => HttpResponse::Ok().json(json!({})),
        Err(e) => HttpResponse::BadRequest()
            .json(json!({"code": "evaluation_error", "message": e.to_string()})),
    }
}
