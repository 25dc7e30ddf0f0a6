//! `portcullis bench pipeline`: the engine end to end against its ceiling, in one run.
//!
//! 1. N realistic CloudTrail records (single records and log files) are produced to a fresh topic.
//! 2. Ceiling: the same messages consumed by a fresh group, decoded, and COPYed into the same
//!    `events` table — no actors, no policy, no decisions.
//! 3. Pipeline: the engine consumes the topic with its own group: decode, tenant actors, Rego,
//!    events + decisions written idempotently, offsets stored after commit.
//! 4. Latency: with the engine running, records are produced at half the measured pipeline rate;
//!    produce→commit p50/p99 come from each event's send time and the time its row was written.
//!
//! Everything happens in a dedicated database (`{database}_bench`), emptied first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{SecondsFormat, Utc};
use portcullis_engine::decode::decode_cloudtrail;
use portcullis_engine::TenantId;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::runtime;
use crate::sinks::postgres;
use crate::sources::kafka;
use crate::telemetry::stats::Stats;
use crate::tools::demo::{Generator, Traffic, DEMO_TENANTS};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub records: u64,
    pub partitions: i32,
    /// How long the half-rate latency phase produces for.
    pub latency_secs: u64,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub records: u64,
    pub messages: usize,
    pub produce_secs: f64,
    pub ceiling_secs: f64,
    pub pipeline_secs: f64,
    pub latency_rate: f64,
    pub latency_events: u64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
}

impl BenchReport {
    pub fn ceiling_rate(&self) -> f64 {
        self.records as f64 / self.ceiling_secs
    }
    pub fn pipeline_rate(&self) -> f64 {
        self.records as f64 / self.pipeline_secs
    }
}

/// The configured database URL with `_bench` appended to the database name.
pub fn bench_url(url: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (prefix, db) = base.rsplit_once('/').unwrap_or((base, "portcullis"));
    let db = if db.is_empty() { "portcullis" } else { db };
    match query {
        Some(q) => format!("{prefix}/{db}_bench?{q}"),
        None => format!("{prefix}/{db}_bench"),
    }
}

/// Runs the benchmark. Must be called inside [`crate::runtime::block_on`].
pub async fn run_pipeline_bench(
    config: &Config,
    opts: &BenchOptions,
) -> anyhow::Result<BenchReport> {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut cfg = config.clone();
    cfg.postgres.url = bench_url(&config.postgres.url);
    cfg.mqtt.enabled = false;
    cfg.http.enabled = false;
    cfg.kafka.topic = format!("portcullis-bench-{run}");
    cfg.kafka.topic_partitions = opts.partitions;
    cfg.kafka.group_id = format!("portcullis-bench-pipeline-{run}");

    let pool = postgres::migrate(&cfg.postgres)
        .await
        .context("cannot prepare the bench database")?;
    super::clear_path_rows(&pool).await?;
    for t in DEMO_TENANTS {
        let accounts: Vec<String> = t.accounts.iter().map(|a| a.to_string()).collect();
        postgres::add_tenant(&pool, &TenantId::parse(t.id)?, Some(t.name), &accounts).await?;
    }
    let registry = postgres::load_registry(&pool).await?;

    eprintln!("generating {} CloudTrail records…", opts.records);
    let messages: Vec<(String, Vec<u8>)> = Generator::new(opts.seed, Utc::now(), "portcullis")
        .kafka_traffic(opts.records)
        .into_iter()
        .filter_map(|t| match t {
            Traffic::Kafka { key, payload, .. } => Some((key, payload)),
            Traffic::Mqtt { .. } => None,
        })
        .collect();
    kafka::ensure_topic(&cfg.kafka, &cfg.kafka.topic, opts.partitions).await?;
    let producer = kafka::producer(&cfg.kafka)?;
    eprintln!(
        "producing {} messages to {}…",
        messages.len(),
        cfg.kafka.topic
    );
    let t = Instant::now();
    kafka::produce_all(&producer, &cfg.kafka.topic, &messages).await?;
    let produce_secs = t.elapsed().as_secs_f64();

    eprintln!("ceiling: Kafka → decode → COPY, no actors, no policy…");
    let t = Instant::now();
    let copied = ceiling(&cfg, &registry, &pool, messages.len(), &run).await?;
    let ceiling_secs = t.elapsed().as_secs_f64();
    if copied != opts.records {
        bail!("ceiling copied {copied} rows, expected {}", opts.records);
    }
    super::clear_path_rows(&pool).await?;

    eprintln!("pipeline: the engine end to end…");
    let stats = Arc::new(Stats::default());
    let cancel = CancellationToken::new();
    let t = Instant::now();
    let engine_task = actix_rt::spawn(runtime::run(cfg.clone(), stats.clone(), cancel.clone()));
    wait_for(&stats, opts.records, &engine_task).await?;
    let pipeline_secs = t.elapsed().as_secs_f64();
    if let Err(e) = super::no_dead_letters(&pool, &stats).await {
        cancel.cancel();
        return Err(e);
    }

    let latency_rate = (opts.records as f64 / pipeline_secs / 2.0).max(1.0);
    eprintln!(
        "latency: producing at {latency_rate:.0} records/s for {} s…",
        opts.latency_secs
    );
    let latency_events = paced(
        &producer,
        &cfg.kafka.topic,
        latency_rate,
        opts.latency_secs,
        &run,
        opts.seed,
    )
    .await?;
    wait_for(&stats, opts.records + latency_events, &engine_task).await?;
    cancel.cancel();
    engine_task.await??;
    let (p50, p99): (Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)
         FROM (SELECT extract(epoch FROM ingested_at - event_time) * 1000 AS ms
               FROM events WHERE event_id LIKE $1) l",
    )
    .bind(format!("lat-{run}-%"))
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    let (Some(p50), Some(p99)) = (p50, p99) else {
        bail!("no latency probe was stored; see dead_letters in the bench database");
    };
    Ok(BenchReport {
        records: opts.records,
        messages: messages.len(),
        produce_secs,
        ceiling_secs,
        pipeline_secs,
        latency_rate,
        latency_events,
        latency_p50_ms: p50,
        latency_p99_ms: p99,
    })
}

async fn wait_for(
    stats: &Stats,
    records: u64,
    engine_task: &tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let last_progress = Instant::now();
    let mut last = 0;
    let mut since = last_progress;
    loop {
        let done = stats.records_committed();
        if done >= records {
            return Ok(());
        }
        if engine_task.is_finished() {
            bail!("the engine stopped during the benchmark");
        }
        if done != last {
            (last, since) = (done, Instant::now());
        } else if since.elapsed() > Duration::from_secs(60) {
            bail!("no progress for 60 s at {done} of {records} records");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Consumes `messages` messages and COPYs their events: the work with no actors and no policy.
async fn ceiling(
    cfg: &Config,
    registry: &portcullis_engine::TenantRegistry,
    pool: &sqlx::PgPool,
    messages: usize,
    run: &str,
) -> anyhow::Result<u64> {
    let consumer: StreamConsumer = kafka::client_config(&cfg.kafka)
        .set("group.id", format!("portcullis-bench-ceiling-{run}"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&cfg.kafka.topic])?;
    let (mut seen, mut copied) = (0usize, 0u64);
    let mut events = Vec::with_capacity(5000);
    while seen < messages {
        let m = consumer.recv().await?;
        seen += 1;
        for e in decode_cloudtrail(
            m.payload().unwrap_or_default(),
            registry,
            cfg.kafka.max_message_bytes,
        ) {
            events
                .push(e.map_err(|r| anyhow::anyhow!("bench record did not decode: {}", r.error))?);
        }
        if events.len() >= 5000 || seen == messages {
            copied += super::copy::copy_events(pool, &events).await?;
            events.clear();
        }
    }
    Ok(copied)
}

/// Produces single records at `rate` per second for `secs` seconds, each stamped with its send
/// time (`eventTime`) and an id marking it as a latency probe. Returns how many it sent.
async fn paced(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    rate: f64,
    secs: u64,
    run: &str,
    seed: u64,
) -> anyhow::Result<u64> {
    let mut generator = Generator::new(seed ^ 0x5eed, Utc::now(), "portcullis");
    let tick = Duration::from_millis(10);
    let per_tick = rate / 100.0;
    let (start, mut owed, mut sent) = (Instant::now(), 0.0f64, 0u64);
    let mut interval = tokio::time::interval(tick);
    while start.elapsed() < Duration::from_secs(secs) {
        interval.tick().await;
        owed += per_tick;
        let mut batch = Vec::new();
        while owed >= 1.0 {
            let mut rec = generator.cloudtrail_record();
            rec["eventID"] = json!(format!("lat-{run}-{sent}"));
            rec["eventTime"] = json!(Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true));
            let key = rec["recipientAccountId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            batch.push((key, serde_json::to_vec(&rec)?));
            owed -= 1.0;
            sent += 1;
        }
        kafka::produce_all(producer, topic, &batch).await?;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::bench_url;

    #[test]
    fn bench_database_sits_beside_the_configured_one() {
        assert_eq!(
            bench_url("postgres://u:p@h:5432/portcullis"),
            "postgres://u:p@h:5432/portcullis_bench"
        );
        assert_eq!(
            bench_url("postgres://h/db?sslmode=disable"),
            "postgres://h/db_bench?sslmode=disable"
        );
    }
}
