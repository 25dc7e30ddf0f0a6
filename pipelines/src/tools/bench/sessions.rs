//! `portcullis bench sessions`: the engine's resident memory per agent session, live and
//! idle, and once passivated. Agents say hello through one MQTT client publishing on each
//! agent's own hello topic (a session belongs to an agent, not to a connection, so this is
//! the engine's whole cost of one). A small warm-up round, left to passivate, touches every
//! code path first; then N agents say hello. Growth over the baseline divided by N is an upper
//! bound on a live session's memory (it also holds the allocator's slack and the transient
//! work of the hellos). Passivated sessions: N more agents say hello and passivate in turn;
//! were anything kept per passivated session, memory would grow with the second N as with the
//! first, so the growth between the two passivated readings, over N, is its cost.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use portcullis_engine::distribution::{agent_topic, AgentTopicKind, AGENT_PROTOCOL};
use portcullis_engine::TenantId;
use serde_json::json;

use super::in_process::BenchWorld;
use crate::config::Config;
use crate::sinks::postgres;
use crate::sources::mqtt;

const KIND: &str = "agent_session";
/// Agents of the warm-up round.
const WARM_UP: usize = 200;

pub struct SessionsOptions {
    pub agents: usize,
    /// `actors.agent_session.idle_secs` for the run: how soon sessions passivate.
    pub idle_secs: u64,
}

#[derive(Debug, Clone)]
pub struct SessionsReport {
    pub agents: usize,
    /// Resident memory after the small warm-up round passivated.
    pub baseline_rss: u64,
    /// With the second round's sessions all live and idle.
    pub live_rss: u64,
    /// After they passivated.
    pub passivated_rss: u64,
    /// After N more agents said hello and passivated too.
    pub passivated_twice_rss: u64,
    /// How long the engine took to handle the second round's hellos.
    pub hello_secs: f64,
}

impl SessionsReport {
    pub fn per_live_session(&self) -> f64 {
        self.live_rss.saturating_sub(self.baseline_rss) as f64 / self.agents as f64
    }

    /// May be negative: the allocator returned memory.
    pub fn per_passivated_session(&self) -> f64 {
        (self.passivated_twice_rss as f64 - self.passivated_rss as f64) / self.agents as f64
    }
}

/// This process's resident memory (the engine runs in it).
fn rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kib * 1024)
}

/// Runs the benchmark. Must be called inside [`crate::runtime::block_on`].
pub async fn run_sessions_bench(
    config: &Config,
    opts: &SessionsOptions,
) -> anyhow::Result<SessionsReport> {
    if opts.agents == 0 {
        bail!("--agents must be at least 1");
    }
    let mut world = BenchWorld::new(config);
    let run = world.run.clone();
    let cfg = &mut world.cfg;
    cfg.actors.agent_session.idle_secs = opts.idle_secs.max(1);
    cfg.actors.agent_session.max_live = cfg.actors.agent_session.max_live.max(opts.agents);
    let pool = postgres::migrate(&cfg.postgres)
        .await
        .context("cannot prepare the bench database")?;
    let tenant = TenantId::parse("bench")?;
    postgres::add_tenant(&pool, &tenant, Some("sessions benchmark"), &[]).await?;
    // What an interrupted run left.
    sqlx::query("DELETE FROM agents WHERE tenant_id = 'bench'")
        .execute(&pool)
        .await?;

    let cfg = world.cfg.clone();
    let engine = world.start_engine().await?;
    let stats = engine.stats.clone();
    if stats.metrics.entity_counts(KIND).is_none() {
        bail!("the engine runs no agent sessions (is [distribution] enabled?)");
    }
    let live = || stats.metrics.entity_counts(KIND).unwrap_or_default().live;
    // Generous: a hello is a Postgres round trip or two and an answer over MQTT.
    let patience = Duration::from_secs(60 + opts.agents as u64 / 50);

    let round = |name: &'static str, agents: usize| {
        let (cfg, pool, run) = (cfg.clone(), pool.clone(), run.clone());
        async move {
            let hello =
                serde_json::to_vec(&json!({"protocol": AGENT_PROTOCOL, "groups": ["fleet"]}))?;
            let messages: Vec<(String, Vec<u8>)> = (0..agents)
                .map(|i| {
                    let id = format!("{name}-{run}-{i}");
                    let topic = agent_topic(
                        &cfg.mqtt.topic_prefix,
                        &TenantId::parse("bench").expect("valid"),
                        &id,
                        AgentTopicKind::Hello,
                    );
                    (topic, hello.clone())
                })
                .collect();
            let t = Instant::now();
            mqtt::publish_all(&cfg.mqtt, &format!("pcbench-{run}-{name}"), messages).await?;
            let until = Instant::now() + patience;
            loop {
                let seen: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM agents WHERE tenant_id = 'bench' AND agent_id LIKE $1",
                )
                .bind(format!("{name}-{run}-%"))
                .fetch_one(&pool)
                .await?;
                if seen as usize >= agents {
                    break;
                }
                if Instant::now() > until {
                    bail!("only {seen} of {agents} hellos handled within {patience:?}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(t.elapsed().as_secs_f64())
        }
    };
    let wait_passivated = || async {
        let within = Duration::from_secs(opts.idle_secs * 3 + 30);
        let until = Instant::now() + within;
        while live() > 0 {
            if Instant::now() > until {
                bail!("{} sessions still live after {within:?}", live());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Let freed memory settle back to the allocator.
        tokio::time::sleep(Duration::from_secs(1)).await;
        anyhow::Ok(())
    };

    let warm = opts.agents.min(WARM_UP);
    eprintln!("warm-up: {warm} agents say hello, then passivate…");
    round("warm", warm).await?;
    wait_passivated().await?;
    let baseline_rss = rss_bytes()?;
    eprintln!("measured: {} agents say hello…", opts.agents);
    let hello_secs = round("agent", opts.agents).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let live_now = live();
    if (live_now as usize) < opts.agents {
        bail!(
            "only {live_now} of {} sessions live after the hellos took {hello_secs:.1} s: raise --idle-secs so they stay live while measured",
            opts.agents
        );
    }
    let live_rss = rss_bytes()?;
    eprintln!("waiting for them to passivate ({} s idle)…", opts.idle_secs);
    wait_passivated().await?;
    let passivated_rss = rss_bytes()?;
    eprintln!("{} more agents say hello and passivate…", opts.agents);
    round("more", opts.agents).await?;
    wait_passivated().await?;
    let passivated_twice_rss = rss_bytes()?;

    world.finish(engine).await?;
    sqlx::query("DELETE FROM agents WHERE tenant_id = 'bench'")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(SessionsReport {
        agents: opts.agents,
        baseline_rss,
        live_rss,
        passivated_rss,
        passivated_twice_rss,
        hello_secs,
    })
}
