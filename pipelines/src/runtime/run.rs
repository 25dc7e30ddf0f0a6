//! `portcullis run`: everything wired together.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use portcullis_actors::{
    Activation, Arbiters, PolicyStore, ProtectionBoard, SignalBoard, TenantDirectory,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::anomaly::{run_model_reloads, ModelDirectory, PgModelStore};
use crate::approvals;
use crate::config::Config;
use crate::distribution::{
    self, load_or_create_signing_key, AgentDirectory, PgAgentStore, PgMqttOutbox, SegmentDirectory,
};
use crate::evidence;
use crate::path::{DecodeLimits, Decoder, EventPath, SharedRegistry};
use crate::policy_service::bundle_files::FsBundleSource;
use crate::policy_service::pack_files::FsPackSource;
use crate::policy_service::{self, ActivationRecorder, DecisionBus, DecisionLog};
use crate::protection;
use crate::sinks::mqtt::MqttPublisher;
use crate::sinks::postgres::{self, PgSink};
use crate::sources::{kafka, mqtt};
use crate::telemetry::stats::Stats;
use portcullis_engine::distribution::{encode_public_key, PolicySigner};

/// The processing core without its sources: what `run` feeds, and what `dlq replay` re-drives.
pub struct Parts {
    pub path: Arc<EventPath>,
    /// Where every tenant's compiled policy is published.
    pub store: Arc<PolicyStore>,
    pub directory: Arc<TenantDirectory>,
    pub arbiters: Arc<Arbiters>,
    pub registry: SharedRegistry,
    /// Where committed and API decisions are shown live.
    pub bus: Arc<DecisionBus>,
    /// Verdicts on agents' events, for `run` to publish back to them (others may drop it).
    pub agent_decisions: Option<AgentDecisions>,
    /// Where other notices to agents join the verdicts' queue (answers to their approvals).
    pub agent_queue: Option<tokio::sync::mpsc::Sender<(String, Vec<u8>)>>,
    /// The anomaly-model actors, if `anomaly.enabled`.
    pub models: Option<Arc<ModelDirectory>>,
    /// Protection levels by unit, if `protection.enabled`; `run` ticks it.
    pub protection: Option<Arc<ProtectionBoard>>,
    /// External trust signals that last, if `signals.enabled`; `run` refreshes it.
    pub signals: Option<Arc<SignalBoard>>,
}

pub type AgentDecisions = tokio::sync::mpsc::Receiver<(String, Vec<u8>)>;

/// Largest verdict told to an agent (a rule's value may echo a large input); larger ones are
/// dropped and counted, never sent to break the publisher's connection.
const DECISION_NOTICE_MAX_BYTES: usize = 256 * 1024;

/// Bundle activations as they happen, for `run` to record (others may drop it).
pub type Activations = tokio::sync::mpsc::UnboundedReceiver<Activation>;

impl Parts {
    /// Passivates the actors and stops their arbiters.
    pub fn shutdown(&self) {
        self.directory.passivate_all();
        if let Some(models) = &self.models {
            models.passivate_all();
        }
        self.arbiters.stop();
    }
}

/// Loads the tenant registry and assembles the policy store, the actors and the event path.
/// Must be called inside [`crate::runtime::block_on`]: it starts the arbiters.
pub async fn build(
    config: &Config,
    pool: &sqlx::PgPool,
    stats: Arc<Stats>,
) -> anyhow::Result<(Parts, Activations)> {
    let registry = postgres::load_registry(pool)
        .await
        .context("cannot read the tenant registry")?;
    info!(
        tenants = registry.tenant_count(),
        accounts = registry.account_count(),
        "tenant registry loaded"
    );
    if registry.tenant_count() == 0 {
        warn!("no tenants registered: every event will be dead-lettered (add one with `portcullis tenant add`)");
    }
    let registry: SharedRegistry = Arc::new(RwLock::new(Arc::new(registry)));

    let known_revisions = postgres::known_revisions(pool)
        .await
        .context("cannot read the bundle revisions activated before")?;
    let bundles = Arc::new(
        FsBundleSource::new(&config.policy.bundles_dir)
            .with_packs(FsPackSource::new(&config.policy.packs_dir)),
    );
    let (recorder, activations) = ActivationRecorder::new(stats.clone());
    let store = Arc::new(
        PolicyStore::new(bundles, config.policy.rule.clone())
            .with_eval_timeout(Duration::from_millis(config.policy.eval_timeout_ms))
            .with_evaluator(config.policy.evaluator)
            .with_known_revisions(known_revisions)
            .with_observer(Arc::new(recorder)),
    );
    let arbiters = Arc::new(Arbiters::start(config.workers()));
    let directory = Arc::new(TenantDirectory::new(
        arbiters.clone(),
        store.clone(),
        config.actors.tenant.limits(),
    ));
    stats.metrics.register_entities(vec![directory.stats()]);
    let bus = Arc::new(DecisionBus::new(config.http.stream_buffer));
    let decoder = Decoder::new(
        registry.clone(),
        DecodeLimits {
            kafka_max_bytes: config.kafka.max_message_bytes,
            mqtt_max_bytes: config.mqtt.max_payload_bytes,
            mqtt_prefix: config.mqtt.topic_prefix.clone(),
        },
    );
    let mut path = EventPath::new(
        decoder,
        directory.clone(),
        Arc::new(PgSink::new(pool.clone())),
        stats.clone(),
    )
    .with_after_commit(bus.clone());
    let models = config.anomaly.enabled.then(|| {
        Arc::new(ModelDirectory::new(
            arbiters.clone(),
            Arc::new(PgModelStore::new(pool.clone())),
            config.actors.anomaly_model.limits(),
        ))
    });
    if let Some(models) = &models {
        stats.metrics.register_entities(vec![models.stats()]);
        path = path.with_observer(models.clone());
    }
    if config.evidence.enabled {
        path = path.with_receipts();
    }
    let protection = if config.protection.enabled {
        let board = Arc::new(ProtectionBoard::new(config.protection.params()?));
        protection::load_board(pool, &board)
            .await
            .context("cannot read the protection units")?;
        path = path.with_protection(board.clone());
        Some(board)
    } else {
        None
    };
    let signals = if config.signals.enabled {
        let board = match &protection {
            Some(levels) => SignalBoard::new().holding(levels.clone()),
            None => SignalBoard::new(),
        };
        let board = Arc::new(board);
        crate::signals::refresh_board(pool, &board)
            .await
            .context("cannot read the trust signals")?;
        path = path.with_signals(board.clone());
        Some(board)
    } else {
        None
    };
    let d = &config.distribution;
    let agent_decisions = if config.mqtt.enabled && d.enabled && d.decisions_to_agents {
        let (step, queue) = distribution::decision_replies(
            config.mqtt.topic_prefix.clone(),
            d.decisions_queue,
            DECISION_NOTICE_MAX_BYTES,
            stats.clone(),
        );
        let sender = step.queue();
        path = path.with_after_commit(Arc::new(step));
        Some((queue, sender))
    } else {
        None
    };
    let (agent_decisions, agent_queue) = agent_decisions.unzip();
    // Only when agents are told: a request nobody hears the answer to waits for nothing.
    if agent_queue.is_some() {
        path = path
            .with_agent_approvals(config.approvals.pending())
            .with_after_commit(Arc::new(approvals::AgentApprovalsOpened {
                stats: stats.clone(),
                protection: protection.clone(),
            }));
    }

    let parts = Parts {
        path: Arc::new(path),
        store,
        directory,
        arbiters,
        registry,
        bus,
        agent_decisions,
        agent_queue,
        models,
        protection,
        signals,
    };
    Ok((parts, activations))
}

/// Runs the engine until `cancel` fires, then drains: each source finishes (or abandons, to be
/// redelivered) its batch in hand, stores its offsets or acks, and returns.
/// Must be called inside [`crate::runtime::block_on`] (the actix system).
pub async fn run(
    config: Config,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    // Asked for explicitly, so a limit that cannot be held stops the start (before any work).
    let _cpu_latency = crate::tuning::hold_configured_cpu_latency(&config.tuning)?;
    let pool = postgres::migrate(&config.postgres).await.with_context(|| {
        format!(
            "cannot prepare Postgres at {}",
            redact(&config.postgres.url)
        )
    })?;
    let (mut parts, activations) = build(&config, &pool, stats.clone()).await?;
    let agent_decisions = parts.agent_decisions.take();

    // Bundles: activations recorded as they happen; every bundle on disk activated now, so a
    // broken one shows at start-up; then watched for changes.
    let recorder = tokio::spawn(policy_service::record_activations(
        pool.clone(),
        activations,
        policy_service::engine_name(),
        cancel.clone(),
    ));
    let refused = {
        let (dir, store) = (config.policy.bundles_dir.clone(), parts.store.clone());
        tokio::task::spawn_blocking(move || policy_service::activate_all(&dir, &store))
            .await
            .context("activating bundles panicked")?
    };
    if refused > 0 {
        warn!(refused, "some tenant bundles were refused; see /v1/bundles");
    }
    let _watcher = if config.policy.watch {
        let debounce = Duration::from_millis(config.policy.reload_debounce_ms);
        let bundles = policy_service::watch_bundles(
            &config.policy.bundles_dir,
            parts.store.clone(),
            debounce,
        )
        .with_context(|| {
            format!(
                "cannot watch {} for bundle changes (policy.watch)",
                config.policy.bundles_dir.display()
            )
        })?;
        // No packs directory is fine: no bundle can enable a pack then, and each says so.
        let packs = match config.policy.packs_dir.is_dir() {
            true => Some(
                policy_service::watch_packs(
                    &config.policy.packs_dir,
                    &config.policy.bundles_dir,
                    parts.store.clone(),
                    debounce,
                )
                .with_context(|| {
                    format!(
                        "cannot watch {} for pack changes (policy.watch)",
                        config.policy.packs_dir.display()
                    )
                })?,
            ),
            false => None,
        };
        Some((bundles, packs))
    } else {
        None
    };
    let (decision_log, decision_rx) = DecisionLog::new(config.http.decision_log_queue);
    let decision_writer = policy_service::start_decision_log(
        &config.postgres,
        config.tuning.decision_log_nice,
        decision_rx,
        stats.clone(),
        cancel.clone(),
        config.evidence.enabled,
    )
    .await
    .context("cannot start the decision log writer")?;

    let mut tasks = tokio::task::JoinSet::new();
    if config.evidence.enabled {
        let sealer = load_sealer(&config, &pool).await?;
        let (cfg, s, c) = (config.evidence.clone(), stats.clone(), cancel.clone());
        tasks.spawn(async move {
            evidence::run_checkpoints(sealer, cfg, s, c).await;
            Ok(())
        });
    }
    {
        let (p, cfg, s, c) = (
            pool.clone(),
            config.approvals.clone(),
            stats.clone(),
            cancel.clone(),
        );
        let receipts = config.evidence.enabled;
        tasks.spawn(async move {
            approvals::run_expiry(p, cfg, receipts, s, c).await;
            Ok(())
        });
        let (p, b, c) = (pool.clone(), parts.bus.clone(), cancel.clone());
        tasks.spawn(async move {
            approvals::stream_answers(p, b, c).await;
            Ok(())
        });
        if let Some(queue) = parts.agent_queue.take() {
            let (p, prefix, s, c) = (
                pool.clone(),
                config.mqtt.topic_prefix.clone(),
                stats.clone(),
                cancel.clone(),
            );
            let sweeps = Duration::from_millis(config.approvals.sweep_interval_ms);
            tasks.spawn(async move {
                let max = DECISION_NOTICE_MAX_BYTES;
                approvals::tell_agents(p, prefix, queue, max, sweeps, s, c).await;
                Ok(())
            });
        }
    }
    if let Some(board) = parts.protection.clone() {
        let (p, cfg, c) = (pool.clone(), config.protection.clone(), cancel.clone());
        tasks.spawn(async move {
            protection::run_ticker(p, board, cfg, engine_name(), c).await;
            Ok(())
        });
    }
    if let Some(board) = parts.signals.clone() {
        let every = Duration::from_millis(config.signals.refresh_ms);
        let (p, c) = (pool.clone(), cancel.clone());
        tasks.spawn(async move {
            crate::signals::run_refresh(p, board.clone(), every, c).await;
            Ok(())
        });
    }
    if let Some(models) = parts.models.clone() {
        tasks.spawn(run_model_reloads(pool.clone(), models, cancel.clone()));
    }
    let signer = if config.distribution.enabled {
        Some(Arc::new(load_signer(&config)?))
    } else {
        None
    };
    let segments = if config.distribution.enabled && config.mqtt.enabled {
        let publisher = MqttPublisher::start(
            &config.mqtt,
            &format!("{}-policy", config.mqtt.client_id),
            config.distribution.max_policy_bytes,
            Duration::from_secs(config.distribution.ack_timeout_secs),
            cancel.clone(),
        );
        let outbox = PgMqttOutbox::new(
            pool.clone(),
            publisher.clone(),
            config.mqtt.topic_prefix.clone(),
        );
        let agent_store =
            PgAgentStore::new(pool.clone(), publisher, config.mqtt.topic_prefix.clone());
        if let Some(queue) = agent_decisions {
            // A client of its own: verdicts never wait behind policy versions, nor these on them.
            let replies = MqttPublisher::start(
                &config.mqtt,
                &format!("{}-decisions", config.mqtt.client_id),
                DECISION_NOTICE_MAX_BYTES,
                Duration::from_secs(config.distribution.ack_timeout_secs),
                cancel.clone(),
            );
            tasks.spawn(distribution::run_decision_replies(
                queue,
                replies,
                cancel.clone(),
            ));
        }
        let sessions = Arc::new(AgentDirectory::new(
            parts.arbiters.clone(),
            Arc::new(agent_store),
            config.actors.agent_session.limits(),
        ));
        stats.metrics.register_entities(vec![sessions.stats()]);
        tasks.spawn(distribution::run_agent_listener(
            config.mqtt.clone(),
            sessions.clone(),
            cancel.clone(),
        ));
        tasks.spawn(distribution::run_membership(
            pool.clone(),
            sessions.clone(),
            cancel.clone(),
        ));
        let segments = Arc::new(SegmentDirectory::new(
            parts.arbiters.clone(),
            Arc::new(outbox),
            config.actors.segment.limits(),
        ));
        stats.metrics.register_entities(vec![segments.stats()]);
        tasks.spawn(distribution::run_sender(
            pool.clone(),
            segments.clone(),
            Duration::from_secs(config.distribution.resend_secs.max(1)),
            cancel.clone(),
        ));
        Some((segments, sessions))
    } else {
        if config.distribution.enabled {
            info!("policy distribution: versions can be published, but none are sent while [mqtt] is disabled");
        }
        None
    };
    tasks.spawn(refresh_registry(
        pool.clone(),
        parts.registry.clone(),
        Duration::from_secs(config.postgres.registry_refresh_secs.max(1)),
        cancel.clone(),
    ));
    if config.kafka.enabled {
        if config.kafka.create_topic {
            kafka::ensure_topic(
                &config.kafka,
                &config.kafka.topic,
                config.kafka.topic_partitions,
            )
            .await
            .with_context(|| {
                format!(
                    "cannot create Kafka topic {} on {}",
                    config.kafka.topic, config.kafka.brokers
                )
            })?;
        }
        let (cfg, p, s, c) = (
            config.kafka.clone(),
            parts.path.clone(),
            stats.clone(),
            cancel.clone(),
        );
        tasks.spawn(async move {
            kafka::run_source(cfg, p, s, c)
                .await
                .context("kafka source failed")
        });
        if parts.signals.is_some() {
            if config.kafka.create_topic {
                kafka::ensure_topic(&config.kafka, &config.signals.kafka_topic, 1)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot create Kafka topic {} (signals.kafka_topic)",
                            config.signals.kafka_topic
                        )
                    })?;
            }
            let (k, cfg, p, s, c) = (
                config.kafka.clone(),
                config.signals.clone(),
                pool.clone(),
                stats.clone(),
                cancel.clone(),
            );
            tasks.spawn(async move {
                crate::signals::run_signal_consumer(k, cfg, p, s, c)
                    .await
                    .context("trust signals consumer failed")
            });
        }
        if config.compliance.remediation {
            let topics = [
                &config.compliance.commands_topic,
                &config.compliance.results_topic,
            ];
            if config.kafka.create_topic {
                for topic in topics {
                    kafka::ensure_topic(&config.kafka, topic, 1)
                        .await
                        .with_context(|| {
                            format!("cannot create Kafka topic {topic} (compliance)")
                        })?;
                }
            }
            let (k, cfg, p, c) = (
                config.kafka.clone(),
                config.compliance.clone(),
                pool.clone(),
                cancel.clone(),
            );
            tasks.spawn(async move {
                crate::compliance::run_sender(k, cfg, p, c)
                    .await
                    .context("remediation sender failed")
            });
            let (k, cfg, p, s, c) = (
                config.kafka.clone(),
                config.compliance.clone(),
                pool.clone(),
                stats.clone(),
                cancel.clone(),
            );
            tasks.spawn(async move {
                crate::compliance::run_results_consumer(k, cfg, p, s, c)
                    .await
                    .context("remediation results consumer failed")
            });
        }
    }
    if config.compliance.scan_interval_secs > 0 {
        let (p, store, c) = (pool.clone(), parts.store.clone(), cancel.clone());
        let every = Duration::from_secs(config.compliance.scan_interval_secs);
        tasks.spawn(async move {
            crate::compliance::run_scheduled_scans(p, store, every, c).await;
            Ok(())
        });
    }
    if config.mqtt.enabled {
        let (cfg, p, s, c) = (
            config.mqtt.clone(),
            parts.path.clone(),
            stats.clone(),
            cancel.clone(),
        );
        tasks.spawn(async move {
            mqtt::run_source(cfg, p, s, c)
                .await
                .context("mqtt source failed")
        });
    }
    let http = if config.http.enabled {
        let auth = if config.http.auth {
            crate::access::Authenticator::new(pool.clone(), cancel.clone())
        } else {
            tracing::warn!(
                listen = %config.http.listen,
                "HTTP AUTHENTICATION IS OFF (http.auth = false): anyone who reaches this address may query, read and administer every tenant"
            );
            crate::access::Authenticator::disabled()
        };
        let services = crate::api::Services {
            auth,
            path: Some(parts.path.clone()),
            stats: stats.clone(),
            pool: pool.clone(),
            cancel: cancel.clone(),
            store: parts.store.clone(),
            decision_log,
            bus: parts.bus.clone(),
            signer: signer.clone(),
            max_policy_bytes: config.distribution.max_policy_bytes,
            protection: parts.protection.clone(),
            signals: parts.signals.clone(),
        };
        let handle = crate::api::start(&config, services)
            .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
        info!(listen = ?stats.http_addr.get(), "http up: /v1/data /v1/bundles /healthz /readyz /metrics");
        Some(handle)
    } else {
        None
    };

    info!(workers = config.workers(), "engine running");

    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.context("engine task panicked").and_then(|r| r);
        if let Err(e) = outcome {
            // One source failing stops the engine: better a visible exit than a half-running engine.
            cancel.cancel();
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    if let Some(http) = http {
        http.stop(true).await;
    }
    drop(_watcher);
    if let Some((segments, sessions)) = segments {
        segments.passivate_all();
        sessions.passivate_all();
    }
    parts.shutdown();
    // Every answered query is logged before the pool closes.
    decision_writer.finished().await;
    let _ = recorder.await;
    pool.close().await;
    info!("engine stopped");
    result
}

/// The policy signing key, created on first start; its id and public key are logged, since
/// agents must be given them.
fn load_signer(config: &Config) -> anyhow::Result<PolicySigner> {
    let path = &config.distribution.signing_key_file;
    let (signer, created) = load_or_create_signing_key(path)?;
    let public = encode_public_key(&signer.public_key());
    if created {
        warn!(path = %path.display(), key_id = signer.key_id(), public_key = %public,
              "created a new policy signing key: agents must trust this public key (portcullis signing-key show)");
    } else {
        info!(key_id = signer.key_id(), public_key = %public, "policy signing key loaded");
    }
    Ok(signer)
}

/// The checkpoint signer: the log key, created on first start and recorded as a signing key,
/// so bundles and the API can give it to verifiers.
async fn load_sealer(config: &Config, pool: &sqlx::PgPool) -> anyhow::Result<evidence::Sealer> {
    let e = &config.evidence;
    let (key, created) = evidence::load_or_create_log_key(&e.key_file, &e.origin)?;
    evidence::register_key(pool, &key.label(), key.public_text())
        .await
        .context("cannot record the evidence key")?;
    if created {
        warn!(path = %e.key_file.display(), public_key = key.public_text(),
              "created a new receipt-log key: third parties verify bundles with this public key (portcullis evidence keys)");
    } else {
        info!(public_key = key.public_text(), "receipt-log key loaded");
    }
    Ok(evidence::Sealer::new(pool.clone(), key, &e.origin))
}

async fn refresh_registry(
    pool: sqlx::PgPool,
    shared: SharedRegistry,
    every: Duration,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        match postgres::load_registry(&pool).await {
            Ok(r) => {
                if let Ok(mut slot) = shared.write() {
                    *slot = Arc::new(r);
                }
            }
            Err(e) => warn!(error = %e, "tenant registry refresh failed; keeping the previous one"),
        }
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// This engine, as protection records name it: host and process id.
fn engine_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(super::redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(super::redact("postgres://h/d"), "postgres://h/d");
    }
}
