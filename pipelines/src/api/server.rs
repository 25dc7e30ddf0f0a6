//! The server: routes, shared state, workers.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use portcullis_actors::{PolicyStore, SlowLane};
use portcullis_engine::distribution::PolicySigner;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::access::Authenticator;
use crate::config::Config;
use crate::path::EventPath;
use crate::policy_service::{DecisionBus, DecisionLog};
use crate::telemetry::stats::Stats;

pub(crate) struct State {
    pub(super) stats: Arc<Stats>,
    pub(super) pool: PgPool,
    pub(super) cancel: CancellationToken,
    pub(super) kafka: bool,
    pub(super) mqtt: bool,
    pub(super) store: Arc<PolicyStore>,
    pub(super) slow_lane: Arc<SlowLane>,
    pub(super) decision_log: DecisionLog,
    pub(super) bus: Arc<DecisionBus>,
    pub(super) max_body_bytes: usize,
    pub(super) auth: Arc<Authenticator>,
    /// The event path, to replay dead letters through; `None` where there is none (tests of
    /// the API alone).
    pub(super) path: Option<Arc<EventPath>>,
    pub(super) signer: Option<Arc<PolicySigner>>,
    pub(super) max_policy_bytes: usize,
    /// The broker and the engine's account on it, to enroll agents with.
    pub(super) broker: crate::config::MqttConfig,
    pub(super) approvals: crate::approvals::ApprovalsConfig,
    /// Whether decisions and approval answers leave receipts (`evidence.enabled`).
    pub(super) receipts: bool,
    /// Protection levels by unit; `None` when `protection.enabled` is off.
    pub(super) protection: Option<Arc<portcullis_actors::ProtectionBoard>>,
    /// External trust signals that last; `None` when `signals.enabled` is off.
    pub(super) signals: Option<Arc<portcullis_actors::SignalBoard>>,
    pub(super) signals_config: crate::signals::SignalsConfig,
}

/// How long a tenant whose query ran long stays on the slow lane after its last slow query
/// (portcullis_actors::SlowLane), and how many of its queries may be on the lane at once.
const SLOW_LANE_HOLD: Duration = Duration::from_secs(30);
const SLOW_LANE_PER_TENANT: usize = 8;

/// What the HTTP server serves from.
pub struct Services {
    pub stats: Arc<Stats>,
    pub pool: PgPool,
    pub cancel: CancellationToken,
    /// Tenants' serving policies and bundle status.
    pub store: Arc<PolicyStore>,
    pub decision_log: DecisionLog,
    pub bus: Arc<DecisionBus>,
    /// Checks every request's token (or lets all in when `http.auth` is off).
    pub auth: Arc<Authenticator>,
    /// Where replayed dead letters go, as live traffic does.
    pub path: Option<Arc<EventPath>>,
    /// Signs published segment policy; `None` when distribution is off.
    pub signer: Option<Arc<PolicySigner>>,
    pub max_policy_bytes: usize,
    /// Protection levels by unit, shared with the event path.
    pub protection: Option<Arc<portcullis_actors::ProtectionBoard>>,
    /// External trust signals, shared with the event path.
    pub signals: Option<Arc<portcullis_actors::SignalBoard>>,
}

/// Binds `config.http.listen` and serves until the returned handle is stopped. Records the bound
/// address in `stats.http_addr` (useful with port 0). Must run on the actix system's thread.
pub fn start(config: &Config, services: Services) -> std::io::Result<ServerHandle> {
    let stats = services.stats.clone();
    let slow_lane = SlowLane::start(services.store.clone(), SLOW_LANE_HOLD, SLOW_LANE_PER_TENANT)?;
    let state = web::Data::new(State {
        stats: services.stats,
        pool: services.pool,
        cancel: services.cancel,
        kafka: config.kafka.enabled,
        mqtt: config.mqtt.enabled,
        store: services.store,
        slow_lane,
        decision_log: services.decision_log,
        bus: services.bus,
        max_body_bytes: config.http.max_body_bytes,
        auth: services.auth,
        path: services.path,
        signer: services.signer,
        max_policy_bytes: services.max_policy_bytes,
        broker: config.mqtt.clone(),
        approvals: config.approvals.clone(),
        receipts: config.evidence.enabled,
        protection: services.protection,
        signals: services.signals,
        signals_config: config.signals.clone(),
    });
    let workers = match config.http.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
    };
    let max_body_bytes = config.http.max_body_bytes;
    let slice = Duration::from_micros(config.tuning.http_worker_time_slice_us);
    // The factory runs once on each worker thread as it starts: the place for per-thread setup.
    let server = HttpServer::new(move || {
        if !slice.is_zero() {
            crate::tuning::sched::request_time_slice(slice);
        }
        App::new()
            .app_data(state.clone())
            // Bodies read whole (tokens, replay, publishing a segment policy).
            .app_data(web::PayloadConfig::new(max_body_bytes))
            .route("/healthz", web::get().to(super::health::healthz))
            .route("/readyz", web::get().to(super::health::readyz))
            .route("/metrics", web::get().to(super::health::metrics))
            .route("/", web::get().to(super::console::root))
            .route("/console", web::get().to(super::console::root))
            .route("/console/{file:.*}", web::get().to(super::console::asset))
            // Everything below /v1 needs a token; each endpoint checks its scopes.
            .service(
                web::scope("/v1")
                    .wrap(from_fn(super::auth::authenticate))
                    .service(web::scope("/data").default_service(web::to(super::data::route)))
                    .route(
                        "/gateway/{tenant}/{rule:.*}",
                        web::route().to(super::gateway::authorize),
                    )
                    .route("/stream/decisions", web::get().to(super::stream::decisions))
                    .route("/bundles", web::get().to(super::bundles::list))
                    .route("/bundles/{tenant}", web::get().to(super::bundles::one))
                    .route("/tenants", web::get().to(super::records::tenants))
                    .route("/events", web::get().to(super::records::events))
                    .route(
                        "/events/{tenant}/{event_id:.*}",
                        web::get().to(super::records::event),
                    )
                    .route("/decisions", web::get().to(super::records::decisions))
                    .route("/decisions/{id}", web::get().to(super::records::decision))
                    .route("/dead-letters", web::get().to(super::records::dead_letters))
                    .route(
                        "/dead-letters/replay",
                        web::post().to(super::records::replay),
                    )
                    .route("/whoami", web::get().to(super::tokens::whoami))
                    .route("/tokens", web::get().to(super::tokens::list))
                    .route("/tokens", web::post().to(super::tokens::create))
                    .route("/tokens/{token}", web::delete().to(super::tokens::revoke))
                    .route("/segments", web::get().to(super::segments::list))
                    .route(
                        "/segments/{tenant}/{segment}/versions",
                        web::get().to(super::segments::versions),
                    )
                    .route(
                        "/segments/{tenant}/{segment}/versions",
                        web::post().to(super::segments::publish),
                    )
                    .route(
                        "/segments/{tenant}/{segment}/versions/{version}",
                        web::get().to(super::segments::version),
                    )
                    .route("/segment-rules", web::get().to(super::segments::rules))
                    .route("/segment-rules", web::post().to(super::segments::add_rule))
                    .route(
                        "/segment-rules",
                        web::delete().to(super::segments::remove_rule),
                    )
                    .route("/agents", web::get().to(super::segments::agents))
                    .route(
                        "/agents/{tenant}/{agent}/enrollment",
                        web::post().to(super::enrollment::enroll),
                    )
                    .route(
                        "/agents/{tenant}/{agent}/enrollment",
                        web::delete().to(super::enrollment::revoke),
                    )
                    .route("/enrollments", web::get().to(super::enrollment::list))
                    .route(
                        "/anomaly/{tenant}/{scope}/training",
                        web::post().to(super::training::start),
                    )
                    .route(
                        "/anomaly/{tenant}/{scope}/training",
                        web::get().to(super::training::status),
                    )
                    .route(
                        "/anomaly/{tenant}/{scope}/training/stop",
                        web::post().to(super::training::stop),
                    )
                    .route(
                        "/anomaly/{tenant}/{scope}/training/close",
                        web::post().to(super::training::close),
                    )
                    .route(
                        "/training-sessions",
                        web::get().to(super::training::sessions),
                    )
                    .route("/anomaly-models", web::get().to(super::training::models))
                    .route(
                        "/anomaly/{tenant}/{scope}/settings",
                        web::put().to(super::anomalies::set_settings),
                    )
                    .route(
                        "/anomaly-settings",
                        web::get().to(super::anomalies::settings),
                    )
                    .route("/anomalies", web::get().to(super::anomalies::anomalies))
                    .route(
                        "/receipts",
                        web::get().to(super::evidence::receipt_of_decision),
                    )
                    .route(
                        "/receipts/{tenant}/{index}",
                        web::get().to(super::evidence::receipt),
                    )
                    .route("/checkpoints", web::get().to(super::evidence::checkpoints))
                    .route(
                        "/checkpoints/{tenant}/consistency",
                        web::get().to(super::evidence::consistency),
                    )
                    .route("/evidence-keys", web::get().to(super::evidence::keys))
                    .route("/protection", web::get().to(super::protection::units))
                    .route(
                        "/protection/{tenant}/{unit}",
                        web::put().to(super::protection::set),
                    )
                    .route(
                        "/protection/{tenant}/{unit}",
                        web::delete().to(super::protection::remove),
                    )
                    .route(
                        "/protection/{tenant}/{unit}/samples",
                        web::get().to(super::protection::samples),
                    )
                    .route(
                        "/protection-transitions",
                        web::get().to(super::protection::transitions),
                    )
                    .route("/signals", web::post().to(super::signals::send))
                    .route("/signals", web::get().to(super::signals::list))
                    .route(
                        "/compliance/violations",
                        web::get().to(super::compliance::list),
                    )
                    .route(
                        "/compliance/violations/{id}",
                        web::get().to(super::compliance::one),
                    )
                    .route(
                        "/compliance/violations/{id}/status",
                        web::post().to(super::compliance::set_status),
                    )
                    .route(
                        "/compliance/violations/{id}/remediate",
                        web::post().to(super::compliance::remediate),
                    )
                    .route(
                        "/compliance/resources",
                        web::get().to(super::compliance::resources),
                    )
                    .route(
                        "/compliance/remediations",
                        web::get().to(super::compliance::remediations),
                    )
                    .route(
                        "/compliance/frameworks",
                        web::get().to(super::compliance::frameworks),
                    )
                    .route(
                        "/compliance/scans",
                        web::post().to(super::compliance::start_scan),
                    )
                    .route(
                        "/compliance/scans",
                        web::get().to(super::compliance::list_scans),
                    )
                    .route(
                        "/compliance/scans/{id}",
                        web::get().to(super::compliance::one_scan),
                    )
                    .route("/approvals", web::get().to(super::approvals::list))
                    .route("/approvals/{id}", web::get().to(super::approvals::one))
                    .route(
                        "/approvals/{id}/approve",
                        web::post().to(super::approvals::approve),
                    )
                    .route(
                        "/approvals/{id}/deny",
                        web::post().to(super::approvals::deny),
                    )
                    .route(
                        "/trust-scores",
                        web::get().to(super::anomalies::trust_scores),
                    )
                    .default_service(web::to(super::not_found)),
            )
            .default_service(web::to(super::not_found))
    })
    .workers(workers)
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
