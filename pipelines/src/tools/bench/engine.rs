//! `portcullis bench engine`: the engine's own throughput, without the broker, against a COPY
//! ceiling over the same messages, in one run.
//!
//! 1. N realistic CloudTrail records (single records and log files) are generated in memory.
//! 2. Ceiling: the same messages decoded and COPYed into `events` in batches of the same size,
//!    as many at once as the engine keeps in flight: no actors, no policy, no decisions, no
//!    staging, no conflict check.
//! 3. Engine: the same messages fed by the memory source through the staged event path (decode,
//!    tenant actors and Rego, events and decisions COPYed through staging tables with
//!    `ON CONFLICT DO NOTHING`, one transaction per batch), exactly as the Kafka source feeds it,
//!    with anomaly models and receipts off, and the compliance packs the bundles enable on;
//!    then the same with the bundles' packs taken out: what packs cost.
//! 4. Receipts: the same with every decision's receipt appended to its tenant's log in the
//!    batch's transaction (sealing into checkpoints runs beside it, as in the engine): what
//!    receipts cost, against phase 3.
//! 5. Collecting: the same, with receipts and anomaly models on and a training session active for every
//!    tenant (features computed and stored); the sessions are then stopped, training a model.
//! 6. Scoring: the same, with every event scored by its tenant's model before policy, the
//!    score stored with its decision, anomalies and trust changes stored: what anomaly scoring
//!    costs, against phase 3.
//!
//! CPU is read for this process (the engine) and for Postgres's processes, so the report says
//! where the time goes. Everything happens in a dedicated database (`{database}_bench`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use portcullis_engine::anomaly::{ForestParams, ModelScope};
use portcullis_engine::evidence::LogKey;
use portcullis_engine::{Origin, TenantId};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::pipeline::bench_url;
use crate::anomaly::{close_session, start_session, stop_session, TrainingError};
use crate::config::Config;
use crate::evidence::{run_checkpoints, Sealer};
use crate::path::{DecodeLimits, Decoder, Inbound};
use crate::runtime;
use crate::sinks::postgres;
use crate::sources::memory::run_memory_source;
use crate::sources::BatchLimits;
use crate::telemetry::stats::Stats;
use crate::tools::demo::{Generator, Traffic, DEMO_TENANTS};

#[derive(Debug, Clone)]
pub struct EngineBenchOptions {
    pub records: u64,
    pub seed: u64,
}

/// One phase's figures.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub secs: f64,
    /// CPU time of this process (user + system) during the phase.
    pub engine_cpu_secs: f64,
    /// CPU time of Postgres's processes during the phase.
    pub postgres_cpu_secs: f64,
}

#[derive(Debug, Clone)]
pub struct EngineBenchReport {
    pub records: u64,
    pub messages: usize,
    pub batch_messages: usize,
    pub in_flight: usize,
    pub ceiling: Phase,
    /// The staged path with anomaly models and receipts off (compliance packs on, as the
    /// bundles enable them).
    pub engine: Phase,
    /// The same with no compliance pack enabled.
    pub no_packs: Phase,
    /// Findings the packs stored in the engine phase.
    pub findings: i64,
    /// The same with receipts on.
    pub receipts: Phase,
    /// With a training session active for every tenant: features computed and stored.
    pub collecting: Phase,
    /// With every event scored by its tenant's model.
    pub scoring: Phase,
    /// Of the scored events, those at or above the default threshold (anomalies stored), and
    /// the principals whose trust they lowered.
    pub anomalies: i64,
    pub distrusted: i64,
}

impl EngineBenchReport {
    pub fn rate(&self, phase: &Phase) -> f64 {
        self.records as f64 / phase.secs
    }

    /// CPU time per event, in µs.
    pub fn per_event_us(&self, cpu_secs: f64) -> f64 {
        cpu_secs * 1e6 / self.records as f64
    }
}

/// Runs the benchmark. Must be called inside [`crate::runtime::block_on`].
pub async fn run_engine_bench(
    config: &Config,
    opts: &EngineBenchOptions,
) -> anyhow::Result<EngineBenchReport> {
    let mut cfg = config.clone();
    cfg.postgres.url = bench_url(&config.postgres.url);
    let pool = postgres::migrate(&cfg.postgres)
        .await
        .context("cannot prepare the bench database")?;
    for t in DEMO_TENANTS {
        let accounts: Vec<String> = t.accounts.iter().map(|a| a.to_string()).collect();
        postgres::add_tenant(&pool, &TenantId::parse(t.id)?, Some(t.name), &accounts).await?;
    }

    eprintln!("generating {} CloudTrail records…", opts.records);
    let messages = generate(opts.records, opts.seed);
    let batch = cfg.kafka.batch_max_messages;
    let in_flight = cfg.kafka.max_in_flight_batches;
    let limits = BatchLimits {
        max_messages: batch,
        max_bytes: cfg.kafka.batch_max_bytes,
        linger: Duration::ZERO,
    };

    truncate(&pool).await?;
    // Models and sessions of an earlier run would score the collecting phase.
    sqlx::query(
        "TRUNCATE training_rows, anomaly_models, training_sessions, anomalies, trust_scores",
    )
    .execute(&pool)
    .await?;
    eprintln!("ceiling: decode → COPY into events, no actors, no policy…");
    let registry = Arc::new(std::sync::RwLock::new(Arc::new(
        postgres::load_registry(&pool).await?,
    )));
    let decoder = Arc::new(Decoder::new(
        registry,
        DecodeLimits {
            kafka_max_bytes: cfg.kafka.max_message_bytes,
            mqtt_max_bytes: cfg.mqtt.max_payload_bytes,
            mqtt_prefix: cfg.mqtt.topic_prefix.clone(),
        },
    ));
    let meter = Meter::start();
    let copied = ceiling(&pool, &decoder, &messages, batch, in_flight).await?;
    let ceiling = meter.stop();
    if copied != opts.records {
        bail!(
            "the ceiling copied {copied} rows, expected {}",
            opts.records
        );
    }

    let run_with = |anomaly: bool, receipts: bool, bundles: Option<std::path::PathBuf>| {
        let mut cfg = cfg.clone();
        cfg.anomaly.enabled = anomaly;
        cfg.evidence.enabled = receipts;
        if let Some(dir) = bundles {
            cfg.policy.bundles_dir = dir;
        }
        let (pool, messages) = (pool.clone(), &messages);
        async move {
            truncate(&pool).await?;
            engine_phase(&cfg, &pool, messages, limits, in_flight, opts.records).await
        }
    };
    let run = |anomaly: bool, receipts: bool| run_with(anomaly, receipts, None);
    eprintln!("no packs: the staged event path, fed from memory, no compliance pack enabled…");
    let without = bundles_without_packs(&cfg.policy.bundles_dir)?;
    let no_packs = run_with(false, false, Some(without.path().to_owned())).await?;
    eprintln!("engine: the same with the packs the bundles enable…");
    let engine = run(false, false).await?;
    let findings: i64 = sqlx::query_scalar("SELECT count(*) FROM compliance_findings")
        .fetch_one(&pool)
        .await?;
    if findings == 0 {
        bail!(
            "the packs found nothing: do the bundles in {} enable packs?",
            cfg.policy.bundles_dir.display()
        );
    }
    eprintln!("receipts: the same, every decision's receipt appended to its tenant's log…");
    let receipts = run(false, true).await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM receipts")
        .fetch_one(&pool)
        .await?;
    if stored as u64 != opts.records {
        bail!("{stored} receipts were stored, expected {}", opts.records);
    }
    eprintln!("collecting: anomaly models on, a training session for every tenant…");
    let scope = ModelScope::Cloudtrail;
    for t in DEMO_TENANTS {
        let tenant = TenantId::parse(t.id)?;
        // A session left by an interrupted run is closed first.
        match close_session(&pool, &tenant, scope, "bench").await {
            Ok(_) | Err(TrainingError::NoneActive { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        start_session(&pool, &tenant, scope, "bench").await?;
    }
    let collecting = run(true, true).await?;
    for t in DEMO_TENANTS {
        let done = stop_session(
            &pool,
            &TenantId::parse(t.id)?,
            scope,
            ForestParams::default(),
            "bench",
        )
        .await?;
        if done.model.is_none() {
            bail!(
                "no model was trained for {}: {}",
                t.id,
                done.session.failure.unwrap_or_default()
            );
        }
    }
    eprintln!("scoring: every event scored by its tenant's model…");
    let scoring = run(true, true).await?;
    let scored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM decisions WHERE anomaly_score IS NOT NULL")
            .fetch_one(&pool)
            .await?;
    if scored as u64 != opts.records {
        bail!("{scored} events were scored, expected {}", opts.records);
    }
    let anomalies: i64 = sqlx::query_scalar("SELECT count(*) FROM anomalies")
        .fetch_one(&pool)
        .await?;
    let distrusted: i64 = sqlx::query_scalar("SELECT count(*) FROM trust_scores")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(EngineBenchReport {
        records: opts.records,
        messages: messages.len(),
        batch_messages: batch,
        in_flight,
        ceiling,
        engine,
        no_packs,
        findings,
        receipts,
        collecting,
        scoring,
        anomalies,
        distrusted,
    })
}

/// One pass of the messages through a freshly built engine: its wall and CPU time, checked to
/// have stored every event and decision once.
async fn engine_phase(
    cfg: &Config,
    pool: &sqlx::PgPool,
    messages: &[Inbound],
    limits: BatchLimits,
    in_flight: usize,
    records: u64,
) -> anyhow::Result<Phase> {
    let stats = Arc::new(Stats::default());
    let (parts, _activations) = runtime::build(cfg, pool, stats.clone()).await?;
    for t in DEMO_TENANTS {
        parts
            .store
            .reload(&TenantId::parse(t.id)?)
            .with_context(|| format!("the bench needs the demo tenant {}'s bundle", t.id))?;
    }
    let sealing = CancellationToken::new();
    let sealer = if cfg.evidence.enabled {
        // Sealing runs beside the path as in the engine, often, so that the phase's end waits
        // little for the last checkpoint.
        let key = LogKey::from_seed("portcullis.bench", crate::secret_file::random_seed()?)?;
        let mut evidence = cfg.evidence.clone();
        evidence.checkpoint_interval_ms = 200;
        Some(tokio::spawn(run_checkpoints(
            Sealer::new(pool.clone(), key, &evidence.origin),
            evidence,
            stats.clone(),
            sealing.clone(),
        )))
    } else {
        None
    };
    let meter = Meter::start();
    let run = run_memory_source(
        &parts.path,
        messages.iter().cloned(),
        limits,
        in_flight,
        &CancellationToken::new(),
    )
    .await?;
    if let Some(sealer) = sealer {
        wait_all_sealed(pool).await?;
        sealing.cancel();
        sealer.await?;
    }
    let phase = meter.stop();
    parts.shutdown();
    super::no_dead_letters(pool, &stats).await?;
    if run.stored.of("events") != records || run.stored.of("decisions") != records {
        bail!(
            "the engine stored {} events and {} decisions, expected {records} of each",
            run.stored.of("events"),
            run.stored.of("decisions"),
        );
    }
    Ok(phase)
}

/// Waits until every receipt is under a signed checkpoint.
async fn wait_all_sealed(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM receipt_logs l
             WHERE l.size > coalesce((SELECT max(size) FROM receipt_checkpoints c WHERE c.tenant_id = l.tenant_id), 0)",
        )
        .fetch_one(pool)
        .await?;
        if waiting == 0 {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("receipts of {waiting} tenants were not sealed within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The demo generator's CloudTrail traffic as Kafka messages of a 4-partition topic.
fn generate(records: u64, seed: u64) -> Vec<Inbound> {
    let mut offsets = [0i64; 4];
    Generator::new(seed, Utc::now(), "portcullis")
        .kafka_traffic(records)
        .into_iter()
        .filter_map(|t| match t {
            Traffic::Kafka { key, payload, .. } => Some((key, payload)),
            Traffic::Mqtt { .. } => None,
        })
        .map(|(key, payload)| {
            let partition = key.bytes().map(usize::from).sum::<usize>() % offsets.len();
            offsets[partition] += 1;
            Inbound::new(
                Origin::Kafka {
                    topic: "bench".into(),
                    partition: partition as i32,
                    offset: offsets[partition],
                },
                payload,
            )
        })
        .collect()
}

/// A copy of the bundles in `dir` whose `metadata.json` enables no pack.
fn bundles_without_packs(dir: &std::path::Path) -> anyhow::Result<tempfile::TempDir> {
    let out = tempfile::tempdir()?;
    for tenant in
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?
    {
        let tenant = tenant?;
        if !tenant.path().is_dir() {
            continue;
        }
        let to = out.path().join(tenant.file_name());
        std::fs::create_dir(&to)?;
        for file in std::fs::read_dir(tenant.path())? {
            let file = file?;
            if !file.path().is_file() {
                continue;
            }
            if file.file_name() == "metadata.json" {
                let mut meta: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(file.path())?)?;
                if let Some(m) = meta.as_object_mut() {
                    m.remove("packs");
                }
                std::fs::write(to.join("metadata.json"), serde_json::to_vec(&meta)?)?;
            } else {
                std::fs::copy(file.path(), to.join(file.file_name()))?;
            }
        }
    }
    Ok(out)
}

async fn truncate(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    super::clear_path_rows(pool).await
}

/// Decodes the messages and COPYs their events straight into `events`, `in_flight` batches at
/// once: the work without actors, policy, decisions or idempotence.
async fn ceiling(
    pool: &sqlx::PgPool,
    decoder: &Arc<Decoder>,
    messages: &[Inbound],
    batch: usize,
    in_flight: usize,
) -> anyhow::Result<u64> {
    let mut tasks = JoinSet::new();
    let mut copied = 0;
    for chunk in messages.chunks(batch.max(1)) {
        if tasks.len() >= in_flight.max(1) {
            copied += tasks.join_next().await.expect("a task")??;
        }
        let (pool, decoder, chunk) = (pool.clone(), decoder.clone(), chunk.to_vec());
        tasks.spawn(async move {
            let (events, sets) = decoder.decode(&chunk);
            if let Some(dead) = sets.iter().flat_map(|s| &s.dead_letters).next() {
                bail!("a bench record did not decode: {}", dead.reason);
            }
            super::copy::copy_events(&pool, events.iter().map(|d| &d.event)).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        copied += done??;
    }
    Ok(copied)
}

/// Wall and CPU time of a phase.
struct Meter {
    started: Instant,
    engine: f64,
    postgres: f64,
}

impl Meter {
    fn start() -> Self {
        Self {
            started: Instant::now(),
            engine: own_cpu_secs(),
            postgres: postgres_cpu_secs(),
        }
    }

    fn stop(self) -> Phase {
        Phase {
            secs: self.started.elapsed().as_secs_f64(),
            engine_cpu_secs: own_cpu_secs() - self.engine,
            postgres_cpu_secs: postgres_cpu_secs() - self.postgres,
        }
    }
}

/// User and system CPU time of this process so far.
fn own_cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// User and system CPU time so far of every process named `postgres` on this machine (the
/// server and its backends; one that ended during the phase takes its time with it).
fn postgres_cpu_secs() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    procs
        .filter_map(|p| std::fs::read_to_string(p.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            if name != "postgres" {
                return None;
            }
            // utime and stime: fields 14 and 15, the 12th and 13th after the command.
            let mut fields = rest.split_whitespace().skip(11);
            let user: f64 = fields.next()?.parse().ok()?;
            let system: f64 = fields.next()?.parse().ok()?;
            Some((user + system) / ticks)
        })
        .sum()
}
