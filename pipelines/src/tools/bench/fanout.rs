//! `portcullis bench fanout`: N simulated agents, each with its own MQTT connection to the
//! broker, subscribed to one segment; one segment update; the time until every agent has
//! verified and applied it. Measured twice in one run on the same connections: the ceiling (a
//! plain client publishes an envelope of the same size straight to the broker) and the engine
//! (a version published in Postgres, woken by NOTIFY, sent by the segment actor). Each agent
//! does the same work on both: verify the Ed25519 signature, read the document, apply it in
//! order (`distribution::offer`); not compiling Rego, which a real agent does on its own CPU.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::Utc;
use portcullis_engine::distribution::{
    offer, segment_policy_topic, Offer, SegmentId, SegmentKey, SegmentPolicy, SignedEnvelope,
    TrustedKeys, SEGMENT_POLICY_PROTOCOL, SEGMENT_POLICY_TYPE,
};
use portcullis_engine::TenantId;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::in_process::BenchWorld;
use crate::config::Config;
use crate::distribution::{load_or_create_signing_key, publish_version, NewVersion};
use crate::sinks::mqtt::MqttPublisher;
use crate::sinks::postgres;

pub struct FanoutOptions {
    pub agents: usize,
    /// Connections opened at once while ramping up.
    pub connect_batch: usize,
    /// How long to wait for every agent to apply an update.
    pub timeout: Duration,
}

/// Latencies of one update, from its publish to each agent having applied it.
#[derive(Debug, Clone)]
pub struct Spread {
    pub applied: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone)]
pub struct FanoutReport {
    pub agents: usize,
    pub connect_secs: f64,
    pub payload_bytes: usize,
    pub ceiling: Spread,
    pub engine: Spread,
}

fn spread(mut ms: Vec<f64>) -> Spread {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if ms.is_empty() {
            f64::NAN
        } else {
            ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1]
        }
    };
    Spread {
        applied: ms.len(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: ms.last().copied().unwrap_or(f64::NAN),
    }
}

/// One simulated agent: applies what arrives on its two topics, reporting when.
async fn agent(
    cfg: crate::config::MqttConfig,
    id: String,
    topics: [String; 2],
    trusted: Arc<TrustedKeys>,
    ready: mpsc::UnboundedSender<()>,
    applied: mpsc::UnboundedSender<(usize, Instant)>,
    stop: CancellationToken,
) {
    let mut opts = MqttOptions::new(id, &cfg.host, cfg.port);
    opts.set_keep_alive(Duration::from_secs(120))
        .set_max_packet_size(4 * 1024 * 1024, 16 * 1024);
    let (client, mut eventloop) = AsyncClient::new(opts, 4);
    let _ = client
        .subscribe_many(
            topics
                .iter()
                .map(|t| rumqttc::SubscribeFilter::new(t.clone(), QoS::AtLeastOnce)),
        )
        .await;
    let mut versions: BTreeMap<usize, Option<u64>> = BTreeMap::new();
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                let _ = ready.send(());
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let phase = usize::from(p.topic != topics[0]);
                let Ok(envelope) = serde_json::from_slice::<SignedEnvelope>(&p.payload) else {
                    continue;
                };
                let Ok(payload) = trusted.verify(&envelope, SEGMENT_POLICY_TYPE) else {
                    continue;
                };
                let Ok(doc) = SegmentPolicy::from_payload(payload) else {
                    continue;
                };
                let current = versions.entry(phase).or_default();
                if offer(*current, doc.version) == Offer::Apply {
                    *current = Some(doc.version);
                    let _ = applied.send((phase, Instant::now()));
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let _ = client.try_disconnect();
}

/// Collects `n` applications of `phase`, or what arrived by `deadline`.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    phase: usize,
    n: usize,
    t0: Instant,
    timeout: Duration,
) -> Vec<f64> {
    let mut ms = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + timeout;
    while ms.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((p, at))) if p == phase => ms.push(at.duration_since(t0).as_secs_f64() * 1e3),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    ms
}

/// Runs the benchmark. Must be called inside [`crate::runtime::block_on`].
pub async fn run_fanout_bench(
    config: &Config,
    opts: &FanoutOptions,
) -> anyhow::Result<FanoutReport> {
    if opts.agents == 0 {
        bail!("--agents must be at least 1");
    }
    // A key, database and prefix of the benchmark's own, never the operator's.
    let world = BenchWorld::new(config);
    let (cfg, run) = (world.cfg.clone(), world.run.clone());
    let pool = postgres::migrate(&cfg.postgres)
        .await
        .context("cannot prepare the bench database")?;
    let tenant = TenantId::parse("bench")?;
    postgres::add_tenant(&pool, &tenant, Some("fan-out benchmark"), &[]).await?;
    let (signer, _) = load_or_create_signing_key(&cfg.distribution.signing_key_file)?;
    let mut trusted = TrustedKeys::default();
    trusted
        .trust_public(&signer.public_key())
        .map_err(anyhow::Error::msg)?;
    let trusted = Arc::new(trusted);
    let segment = SegmentId::parse(&format!("fleet_{run}"))?;
    let key = SegmentKey {
        tenant: tenant.clone(),
        segment: segment.clone(),
    };
    let engine_topic = segment_policy_topic(&cfg.mqtt.topic_prefix, &key);
    let ceiling_topic = format!("{}/ceiling", cfg.mqtt.topic_prefix);

    let engine = world.start_engine().await?;
    let cancel = engine.cancel.clone();

    eprintln!(
        "connecting {} agents to {}:{}…",
        opts.agents, cfg.mqtt.host, cfg.mqtt.port
    );
    let stop = CancellationToken::new();
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let (applied_tx, mut applied) = mpsc::unbounded_channel();
    let t = Instant::now();
    let mut connected = 0;
    for start in (0..opts.agents).step_by(opts.connect_batch.max(1)) {
        let end = (start + opts.connect_batch.max(1)).min(opts.agents);
        for i in start..end {
            tokio::spawn(agent(
                cfg.mqtt.clone(),
                format!("pcbench-{run}-{i}"),
                [engine_topic.clone(), ceiling_topic.clone()],
                trusted.clone(),
                ready_tx.clone(),
                applied_tx.clone(),
                stop.clone(),
            ));
        }
        while connected < end {
            match tokio::time::timeout(Duration::from_secs(30), ready.recv()).await {
                Ok(Some(())) => connected += 1,
                _ => {
                    stop.cancel();
                    cancel.cancel();
                    bail!(
                        "only {connected} of {} agents subscribed within 30 s",
                        opts.agents
                    );
                }
            }
        }
        if end % 1000 == 0 || end == opts.agents {
            eprintln!("  {end} connected and subscribed");
        }
    }
    let connect_secs = t.elapsed().as_secs_f64();

    // The policy both phases send: the same document shape, signed by the same key.
    let modules = BTreeMap::from([(
        "fleet.rego".to_owned(),
        format!("package segments.{segment}\ndefault allow := false\nallow if input.action in data.segments.{segment}.allowed\n"),
    )]);
    let data = serde_json::json!({"allowed": ["read", "list"]});

    eprintln!("ceiling: one publish straight to the broker…");
    let ceiling_doc = SegmentPolicy {
        protocol: SEGMENT_POLICY_PROTOCOL,
        tenant_id: tenant.clone(),
        segment_id: segment.clone(),
        version: 1,
        modules: modules.clone(),
        data: data.clone(),
        published_at: Utc::now(),
    };
    let envelope = serde_json::to_vec(&signer.sign(SEGMENT_POLICY_TYPE, ceiling_doc.to_payload()))?;
    let payload_bytes = envelope.len();
    let plain = MqttPublisher::start(
        &cfg.mqtt,
        &format!("pcbench-{run}-publisher"),
        1024 * 1024,
        Duration::from_secs(30),
        stop.clone(),
    );
    let until = Instant::now() + Duration::from_secs(10);
    while !plain.is_connected() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = Instant::now();
    plain.publish(ceiling_topic, envelope, false).await?;
    let ceiling = spread(collect(&mut applied, 1, opts.agents, t0, opts.timeout).await);

    eprintln!("engine: one version published in Postgres, sent by the segment actor…");
    let t0 = Instant::now();
    publish_version(
        &pool,
        NewVersion {
            tenant: tenant.clone(),
            segment: segment.clone(),
            modules,
            data,
            published_by: "bench".into(),
        },
        &signer,
        cfg.distribution.max_policy_bytes,
    )
    .await?;
    let engine_spread = spread(collect(&mut applied, 0, opts.agents, t0, opts.timeout).await);

    stop.cancel();
    // The retained version is this run's alone: clear it.
    let clear = MqttPublisher::start(
        &cfg.mqtt,
        &format!("pcbench-{run}-clear"),
        1024,
        Duration::from_secs(10),
        cancel.clone(),
    );
    let until = Instant::now() + Duration::from_secs(5);
    while !clear.is_connected() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = clear.publish(engine_topic, Vec::new(), true).await;
    world.finish(engine).await?;
    sqlx::query("DELETE FROM segments WHERE tenant_id = 'bench'")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(FanoutReport {
        agents: opts.agents,
        connect_secs,
        payload_bytes,
        ceiling,
        engine: engine_spread,
    })
}
