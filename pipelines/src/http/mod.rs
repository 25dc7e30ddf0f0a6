//! The engine's HTTP endpoints: `/healthz`, `/readyz`, `/metrics`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::stats::Stats;

struct State {
    stats: Arc<Stats>,
    pool: PgPool,
    cancel: CancellationToken,
    kafka: bool,
    mqtt: bool,
}

/// Binds `config.http.listen` and serves until the returned handle is stopped. Records the bound
/// address in `stats.http_addr` (useful with port 0). Must run on the actix system's thread.
pub fn start(
    config: &Config,
    stats: Arc<Stats>,
    pool: PgPool,
    cancel: CancellationToken,
) -> std::io::Result<ServerHandle> {
    let state = web::Data::new(State {
        stats: stats.clone(),
        pool,
        cancel,
        kafka: config.kafka.enabled,
        mqtt: config.mqtt.enabled,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .disable_signals() // the engine handles SIGTERM and drains
    .shutdown_timeout(2)
    .bind(&config.http.listen)?;
    if let Some(addr) = server.addrs().first() {
        let _ = stats.http_addr.set(*addr);
    }
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok(handle)
}

/// Alive: 200 while serving, 503 once draining (so a load balancer stops sending work).
async fn healthz(state: web::Data<State>) -> HttpResponse {
    if state.cancel.is_cancelled() {
        HttpResponse::ServiceUnavailable().json(json!({"status": "draining"}))
    } else {
        HttpResponse::Ok().json(json!({"status": "ok"}))
    }
}

/// Ready: Postgres answers and the last write succeeded, and every enabled source is connected.
async fn readyz(state: web::Data<State>) -> HttpResponse {
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(&state.pool),
    )
    .await;
    let postgres = match ping {
        Ok(Ok(_)) if state.stats.postgres_ok.load(Ordering::Relaxed) => "ok",
        Ok(Ok(_)) => "recovering: the last write failed",
        Ok(Err(_)) | Err(_) => "unavailable",
    };
    let kafka = match (
        state.kafka,
        state.stats.kafka_connected.load(Ordering::Relaxed),
    ) {
        (false, _) => "disabled",
        (true, true) => "ok",
        (true, false) => "brokers not reached",
    };
    let mqtt = match (
        state.mqtt,
        state.stats.mqtt_subscribed.load(Ordering::Relaxed),
    ) {
        (false, _) => "disabled",
        (true, true) => "ok",
        (true, false) => "not subscribed",
    };
    let draining = state.cancel.is_cancelled();
    let ready = !draining
        && postgres == "ok"
        && matches!(kafka, "ok" | "disabled")
        && matches!(mqtt, "ok" | "disabled");
    let body = json!({
        "ready": ready,
        "checks": {"postgres": postgres, "kafka": kafka, "mqtt": mqtt, "draining": draining},
        // Informational: owning no partition does not make an engine unready (it still serves
        // MQTT and takes over partitions when a peer leaves), but an operator should see it.
        "kafka_partitions": state.stats.metrics.kafka_assigned_partitions.get(),
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.stats.metrics.render())
}
