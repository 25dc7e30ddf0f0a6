use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use portcullis_engine::access::Grants;
use portcullis_engine::TenantId;
use tokio_util::sync::CancellationToken;

use super::agents::{simulate_edge, EdgeSummary};
use super::generator::{Generator, Traffic};
use super::tenants::DEMO_TENANTS;
use crate::access::{create_token, NewToken};
use crate::config::Config;
use crate::runtime;
use crate::sinks::postgres;
use crate::sources::{kafka, mqtt};
use crate::telemetry::stats::Stats;
use crate::tools::services;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// CloudTrail records to send through Kafka.
    pub cloudtrail_records: u64,
    /// Agent events to publish over MQTT.
    pub device_events: u64,
    /// Start the local services with `scripts/services up` if they do not answer.
    pub start_services: bool,
    /// Give up waiting for the engine after this long.
    pub timeout: Duration,
    pub seed: u64,
    /// After the summary, keep the engine running with a gentle stream until Ctrl-C (or
    /// `stop`), so there is something to watch in the console.
    pub keep_running: bool,
    /// Ends the gentle stream, as Ctrl-C does.
    pub stop: CancellationToken,
    /// Simulated edge agents taken through segment updates while some are offline (0: none).
    pub edge_agents: usize,
}

/// The gentle stream's pace: one CloudTrail record this often, and an agent event every fifth.
const TRICKLE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub elapsed: Duration,
    pub records: u64,
    pub events_written: u64,
    pub allow: u64,
    pub deny: u64,
    pub dead_letters: u64,
    pub top_deny_reasons: Vec<(String, i64)>,
    /// Compliance findings of this run: changes that happened, and attempts that failed.
    pub findings: (i64, i64),
    /// Active violations (all runs), by severity, most severe first.
    pub active_violations: Vec<(String, i64)>,
    /// An admin token made for this run (none when `http.auth` is off).
    pub token: Option<String>,
    /// Where the engine's HTTP server (API and console) listened.
    pub http_addr: Option<std::net::SocketAddr>,
    /// The simulated agents' round, if any ran.
    pub edge: Option<EdgeSummary>,
}

/// How long the token a demo run prints stays valid.
const DEMO_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::days(7);

/// Runs the whole demo; `report` is given the summary once the traffic is in (before the gentle
/// stream, if the engine keeps running). Must be called inside [`crate::runtime::block_on`].
pub async fn run_demo(
    config: Config,
    opts: DemoOptions,
    report: impl FnOnce(&DemoSummary),
) -> anyhow::Result<DemoSummary> {
    if opts.start_services {
        let cfg = config.clone();
        tokio::task::spawn_blocking(move || services::ensure_up(&cfg)).await??;
    }
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot prepare Postgres")?;
    for t in DEMO_TENANTS {
        let accounts: Vec<String> = t.accounts.iter().map(|a| a.to_string()).collect();
        postgres::add_tenant(&pool, &TenantId::parse(t.id)?, Some(t.name), &accounts).await?;
        let dir = config.policy.bundles_dir.join(t.id);
        if !dir.is_dir() {
            bail!("no policy bundle for demo tenant {} at {} (run from the repository root, or set policy.bundles_dir)", t.id, dir.display());
        }
    }
    let token = if config.http.enabled && config.http.auth {
        let new = NewToken {
            name: "demo".into(),
            grants: Grants::everything(),
            expires_at: Some(Utc::now() + DEMO_TOKEN_LIFETIME),
            created_by: "demo".into(),
        };
        let (_, secret) = create_token(&pool, new).await?;
        Some(secret.expose().to_owned())
    } else {
        None
    };
    let started_at = Utc::now();

    // Start the engine in this process.
    let stats = Arc::new(Stats::default());
    let cancel = CancellationToken::new();
    let mut engine = actix_rt::spawn(runtime::run(config.clone(), stats.clone(), cancel.clone()));
    let ready_by = Instant::now() + Duration::from_secs(30);
    while config.mqtt.enabled
        && !stats
            .mqtt_subscribed
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        if engine.is_finished() || Instant::now() > ready_by {
            cancel.cancel();
            engine.await??;
            bail!("the engine did not subscribe to MQTT within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Generate the traffic up front so that sending it is what we time.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut generator = Generator::new(opts.seed, Utc::now(), &config.mqtt.topic_prefix);
    let mut traffic = generator.kafka_traffic(opts.cloudtrail_records);
    traffic.extend(generator.mqtt_traffic(opts.device_events));
    traffic.extend(generator.bad_traffic(&run));
    let total: u64 = traffic.iter().map(Traffic::units).sum();

    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} records  {per_sec}  {msg}",
        )
        .expect("template"),
    );
    let clock = Instant::now();
    let (kafka_msgs, mqtt_msgs): (Vec<Traffic>, Vec<Traffic>) = traffic
        .into_iter()
        .partition(|t| matches!(t, Traffic::Kafka { .. }));
    let send = async {
        tokio::try_join!(
            send_kafka(&config, kafka_msgs),
            send_mqtt(&config, mqtt_msgs, &run)
        )
    };
    tokio::pin!(send);
    let mut sent = false;
    loop {
        let done = stats.records_committed();
        bar.set_position(done.min(total));
        if sent && done >= total {
            break;
        }
        if engine.is_finished() {
            bar.abandon();
            engine.await??;
            bail!("the engine stopped before the demo finished");
        }
        if clock.elapsed() > opts.timeout {
            bar.abandon_with_message("timed out");
            cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(15), engine).await;
            bail!(
                "only {done} of {total} records committed within {:?}",
                opts.timeout
            );
        }
        tokio::select! {
            r = &mut send, if !sent => { r?; sent = true; bar.set_message("all sent"); }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    let elapsed = clock.elapsed();
    bar.finish_with_message("done");

    let top_deny_reasons: Vec<(String, i64)> = sqlx::query_as(
        "SELECT reason, count(*) FROM decisions d, jsonb_array_elements_text(d.result -> 'reasons') AS reason
         WHERE NOT d.allowed AND d.decided_at >= $1 GROUP BY reason ORDER BY count(*) DESC, reason LIMIT 6",
    )
    .bind(started_at)
    .fetch_all(&pool)
    .await?;
    let findings: (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE succeeded), count(*) FILTER (WHERE NOT succeeded)
         FROM compliance_findings WHERE recorded_at >= $1",
    )
    .bind(started_at)
    .fetch_one(&pool)
    .await?;
    let active_violations: Vec<(String, i64)> = sqlx::query_as(
        "SELECT severity, count(*) FROM compliance_violations
         WHERE status IN ('open', 'acknowledged', 'remediating')
         GROUP BY severity
         ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low'], severity)",
    )
    .fetch_all(&pool)
    .await?;
    let edge = if opts.edge_agents > 0 && config.distribution.enabled && config.mqtt.enabled {
        let round = simulate_edge(&config, &pool, &run, opts.edge_agents, opts.timeout);
        tokio::select! {
            r = round => Some(r.context("the simulated agents")?),
            r = &mut engine => {
                r??;
                bail!("the engine stopped while the simulated agents ran");
            }
        }
    } else {
        None
    };
    let summary = DemoSummary {
        elapsed,
        records: total,
        events_written: stats.events_stored(),
        allow: stats.decisions("allow"),
        deny: stats.decisions("deny"),
        dead_letters: stats.dead_letters(),
        top_deny_reasons,
        findings,
        active_violations,
        token,
        http_addr: stats.http_addr.get().copied(),
        edge,
    };
    report(&summary);
    let trickled = if opts.keep_running {
        trickle(&config, &mut generator, &run, &opts.stop, &engine).await
    } else {
        Ok(())
    };
    cancel.cancel();
    engine.await.context("engine task")??;
    trickled?;
    Ok(summary)
}

/// A record a second through the running engine until Ctrl-C, SIGTERM or `stop`.
async fn trickle(
    config: &Config,
    generator: &mut Generator,
    run: &str,
    stop: &CancellationToken,
    engine: &tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Made once, before the loop: a Ctrl-C that arrives while a record is being sent is kept
    // for the next wait, not lost.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let producer = kafka::producer(&config.kafka)?;
    let mut tick = tokio::time::interval(TRICKLE_EVERY);
    for n in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
        }
        if engine.is_finished() {
            bail!("the engine stopped");
        }
        let mut traffic = generator.kafka_traffic(1);
        if n % 5 == 4 {
            traffic.extend(generator.mqtt_traffic(1));
        }
        let mut records = Vec::new();
        let mut agent_events = Vec::new();
        for t in traffic {
            match t {
                Traffic::Kafka { key, payload, .. } => records.push((key, payload)),
                Traffic::Mqtt { .. } => agent_events.push(t),
            }
        }
        kafka::produce_all(&producer, &config.kafka.topic, &records)
            .await
            .context("kafka produce failed")?;
        if !agent_events.is_empty() {
            send_mqtt(config, agent_events, run).await?;
        }
    }
    Ok(())
}

async fn send_kafka(config: &Config, msgs: Vec<Traffic>) -> anyhow::Result<()> {
    let messages: Vec<(String, Vec<u8>)> = msgs
        .into_iter()
        .filter_map(|t| match t {
            Traffic::Kafka { key, payload, .. } => Some((key, payload)),
            Traffic::Mqtt { .. } => None,
        })
        .collect();
    if messages.is_empty() {
        return Ok(());
    }
    kafka::ensure_topic(
        &config.kafka,
        &config.kafka.topic,
        config.kafka.topic_partitions,
    )
    .await?;
    let producer = kafka::producer(&config.kafka)?;
    kafka::produce_all(&producer, &config.kafka.topic, &messages)
        .await
        .context("kafka produce failed")
}

async fn send_mqtt(config: &Config, msgs: Vec<Traffic>, run: &str) -> anyhow::Result<()> {
    let messages = msgs
        .into_iter()
        .filter_map(|t| match t {
            Traffic::Mqtt { topic, payload, .. } => Some((topic, payload)),
            Traffic::Kafka { .. } => None,
        })
        .collect();
    mqtt::publish_all(&config.mqtt, &format!("portcullis-demo-{run}"), messages).await?;
    Ok(())
}
