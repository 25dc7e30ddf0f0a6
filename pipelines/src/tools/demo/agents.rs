//! The demo's edge, as seed 000's bridge shows it: simulated agents (the reference agent, in
//! this process, each with its own MQTT connection and policy cache) in several groups; an
//! administrator publishing segment updates while some agents are offline; and the check that
//! every agent converged on every segment's latest version once they are back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use portcullis_engine::distribution::{SegmentId, SegmentRule, TrustedKeys};
use portcullis_engine::TenantId;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::agent::{run_agent, AgentOptions};
use crate::config::Config;
use crate::distribution::{
    add_segment_rule, enroll_agent, load_signing_key, publish_version, NewVersion,
};

const TENANT: &str = "acme";

/// (group, its segment, the segment's rule).
const SEGMENTS: &[(&str, &str, &str)] = &[
    ("HR", "hr", "allow if input.action == \"read\""),
    (
        "Engineering",
        "eng",
        "allow if input.resource.kind != \"secret\"",
    ),
    ("laptops", "laptops", "allow if not input.usb_storage"),
];

/// The groups of agent `i` are `GROUP_SETS[i % len]`.
const GROUP_SETS: &[&[&str]] = &[
    &["HR", "laptops"],
    &["Engineering", "laptops"],
    &["Engineering"],
    &["HR"],
];

#[derive(Debug, Clone)]
pub struct EdgeSummary {
    pub agents: usize,
    /// Agents stopped while updates were published, then started again.
    pub went_offline: usize,
    /// Versions published while those agents were away.
    pub published_while_away: usize,
    /// Each segment's latest version.
    pub latest: BTreeMap<String, i64>,
    /// From the returning agents' restart to the last agent converged.
    pub catch_up: Duration,
}

struct RunningAgent {
    id: String,
    groups: Vec<String>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Runs `count` agents of tenant acme through a round of updates with a third of them away.
/// Needs the engine running (it answers hellos and sends versions) and its signing key made.
pub async fn simulate_edge(
    config: &Config,
    pool: &PgPool,
    run: &str,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<EdgeSummary> {
    let tenant = TenantId::parse(TENANT)?;
    for (group, segment, _) in SEGMENTS {
        let rule = SegmentRule {
            group: (*group).to_owned(),
            segment: SegmentId::parse(segment)?,
        };
        add_segment_rule(pool, &tenant, &rule).await?;
    }
    let signer = load_signing_key(&config.distribution.signing_key_file)?
        .context("the engine made no signing key")?;
    let mut trusted = TrustedKeys::default();
    trusted
        .trust_public(&signer.public_key())
        .map_err(anyhow::Error::msg)?;
    let state = tempfile::tempdir()?;
    let publish = |step: u32, only: Option<&'static str>| {
        let (pool, signer, run) = (pool.clone(), &signer, run.to_owned());
        let tenant = tenant.clone();
        let max = config.distribution.max_policy_bytes;
        async move {
            let mut n = 0;
            for (_, segment, rule) in SEGMENTS.iter().filter(|s| only.is_none_or(|o| o == s.1)) {
                let new = NewVersion {
                    tenant: tenant.clone(),
                    segment: SegmentId::parse(segment)?,
                    modules: BTreeMap::from([(
                        format!("{segment}.rego"),
                        format!("package segments.{segment}\ndefault allow := false\n{rule}\n"),
                    )]),
                    data: json!({"demo_run": run, "step": step}),
                    published_by: "demo".into(),
                };
                publish_version(&pool, new, signer, max).await?;
                n += 1;
            }
            anyhow::Ok(n)
        }
    };

    publish(1, None).await?;
    let mut agents = Vec::with_capacity(count);
    for i in 0..count {
        let id = format!("demo-agent-{:02}", i + 1);
        let groups: Vec<String> = GROUP_SETS[i % GROUP_SETS.len()]
            .iter()
            .map(|g| (*g).to_owned())
            .collect();
        agents.push(start(config, pool, &tenant, id, groups, state.path(), &trusted).await?);
    }
    wait_converged(pool, &tenant, &agents, timeout).await?;

    // A third go offline; the administrator publishes meanwhile.
    let mut away = Vec::new();
    for (i, agent) in agents.iter_mut().enumerate() {
        if i % 3 == 1 {
            agent.stop.cancel();
            away.push(i);
        }
    }
    for &i in &away {
        let task = std::mem::replace(&mut agents[i].task, actix_rt::spawn(async { Ok(()) }));
        task.await??;
    }
    let published_while_away = publish(2, None).await? + publish(3, Some("hr")).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let back = Instant::now();
    for &i in &away {
        let (id, groups) = (agents[i].id.clone(), agents[i].groups.clone());
        agents[i] = start(config, pool, &tenant, id, groups, state.path(), &trusted).await?;
    }
    let outcome = wait_converged(pool, &tenant, &agents, timeout).await;
    let catch_up = back.elapsed();
    for agent in &agents {
        agent.stop.cancel();
    }
    for agent in agents.drain(..) {
        let _ = agent.task.await;
    }
    let latest = outcome?;
    Ok(EdgeSummary {
        agents: count,
        went_offline: away.len(),
        published_while_away,
        latest,
        catch_up,
    })
}

async fn start(
    config: &Config,
    pool: &PgPool,
    tenant: &TenantId,
    id: String,
    groups: Vec<String>,
    state: &std::path::Path,
    trusted: &TrustedKeys,
) -> anyhow::Result<RunningAgent> {
    let mut mqtt = config.mqtt.clone();
    (mqtt.username, mqtt.password) = (None, None);
    // On a broker that checks identities, each simulated agent is enrolled as a real one is.
    if config.mqtt.admin_username.is_some() {
        let creds = enroll_agent(pool, &config.mqtt, tenant, &id, groups.clone(), "demo").await?;
        (mqtt.username, mqtt.password) = (Some(creds.username), Some(creds.password));
    }
    let stop = CancellationToken::new();
    let opts = AgentOptions {
        tenant: tenant.clone(),
        agent: id.clone(),
        groups: groups.clone(),
        state_dir: state.join(&id),
        trusted: trusted.clone(),
        listen: "127.0.0.1:0".into(),
        mqtt,
    };
    // On this thread: the agent's local API is an actix server.
    let task = actix_rt::spawn(run_agent(opts, stop.clone()));
    Ok(RunningAgent {
        id,
        groups,
        stop,
        task,
    })
}

/// Waits until every agent reports (through its status, recorded by the engine) the latest
/// version of each segment of its groups; then returns the latest versions.
async fn wait_converged(
    pool: &PgPool,
    tenant: &TenantId,
    agents: &[RunningAgent],
    timeout: Duration,
) -> anyhow::Result<BTreeMap<String, i64>> {
    let (mut ids, mut segments) = (Vec::new(), Vec::new());
    for agent in agents {
        for (group, segment, _) in SEGMENTS {
            if agent.groups.iter().any(|g| g == group) {
                ids.push(agent.id.clone());
                segments.push((*segment).to_owned());
            }
        }
    }
    let until = Instant::now() + timeout;
    loop {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT e.agent_id, e.segment_id, coalesce(a.applied_version, 0), s.latest_version
             FROM unnest($2::text[], $3::text[]) AS e (agent_id, segment_id)
             JOIN segments s ON s.tenant_id = $1 AND s.segment_id = e.segment_id
             LEFT JOIN agent_segments a ON a.tenant_id = $1 AND a.agent_id = e.agent_id
                                       AND a.segment_id = e.segment_id",
        )
        .bind(tenant.as_str())
        .bind(&ids)
        .bind(&segments)
        .fetch_all(pool)
        .await?;
        let behind: std::collections::BTreeSet<&str> = rows
            .iter()
            .filter(|r| r.2 < r.3)
            .map(|r| r.0.as_str())
            .collect();
        let latest: BTreeMap<String, i64> = rows.iter().map(|r| (r.1.clone(), r.3)).collect();
        if behind.is_empty() {
            return Ok(latest);
        }
        if Instant::now() > until {
            bail!(
                "{} of {} simulated agents had not converged within {timeout:?}: {}",
                behind.len(),
                agents.len(),
                behind.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        if let Some(done) = agents.iter().find(|a| a.task.is_finished()) {
            bail!("simulated agent {} stopped on its own", done.id);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
