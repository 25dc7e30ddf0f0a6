//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::State;

/// Alive: 200 while serving, 503 once draining (so a load balancer stops sending work).
pub(super) async fn healthz(state: web::Data<State>) -> HttpResponse {
    if state.cancel.is_cancelled() {
        HttpResponse::ServiceUnavailable().json(json!({"status": "draining"}))
    } else {
        HttpResponse::Ok().json(json!({"status": "ok"}))
    }
}

/// Ready: Postgres answers and the last write succeeded, and every enabled source is connected.
pub(super) async fn readyz(state: web::Data<State>) -> HttpResponse {
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

pub(super) async fn metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.stats.metrics.render())
}
