//! `portcullis agent`: the reference edge agent.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use portcullis_engine::distribution::{parse_public_key, TrustedKeys, MAX_GROUPS};
use portcullis_engine::TenantId;
use tokio_util::sync::CancellationToken;

use crate::agent::{run_agent, AgentOptions};
use crate::config::Config;

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Run an edge agent: get this agent's segments' policy from the engine, keep it on disk,
    /// apply every version in order, and answer decisions locally, also while the broker is
    /// away.
    ///
    /// The first start asks the engine for its segments (a hello); later starts load the
    /// policy from --state-dir and resume their MQTT session, receiving what they missed.
    /// Applications on the device ask:
    ///   curl -s -X POST localhost:8282/v1/data/segments/hr/allow -d '{"input": {"action": "read"}}'
    /// The broker and topic prefix come from the [mqtt] settings.
    #[command(verbatim_doc_comment)]
    Run(AgentRunArgs),
}

#[derive(Args)]
pub struct AgentRunArgs {
    /// The tenant this agent belongs to.
    #[arg(long)]
    tenant: String,
    /// This agent's id: 1–128 characters of A-Z a-z 0-9 _ - . (its MQTT client id follows).
    #[arg(long)]
    id: String,
    /// Its groups, comma-separated (segment rules map groups to segments).
    #[arg(long, value_delimiter = ',', required = true)]
    groups: Vec<String>,
    /// Where the policy cache lives (created if missing).
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// A public key whose signatures are trusted (base64, from `portcullis signing-key show`);
    /// repeat during a key rotation.
    #[arg(long = "trust-key", value_name = "PUBLIC_KEY", required = true)]
    trust_keys: Vec<String>,
    /// The local decision API's address (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:8282")]
    listen: String,
}

/// Runs an agent command until Ctrl-C. Must be called inside [`crate::runtime::block_on`].
pub async fn run(
    config: &Config,
    cmd: AgentCommand,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let AgentCommand::Run(args) = cmd;
    let tenant = TenantId::parse(&args.tenant)?;
    let probe = format!("x/{}/agents/{}/hello", tenant, args.id);
    if portcullis_engine::distribution::parse_agent_topic("x", &probe).is_none() {
        bail!(
            "agent id {:?} must be 1 to 128 characters of A-Z a-z 0-9 _ - ., starting with a letter or digit",
            args.id
        );
    }
    let groups: Vec<String> = args
        .groups
        .iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    if groups.is_empty() || groups.len() > MAX_GROUPS {
        bail!("give 1 to {MAX_GROUPS} groups with --groups");
    }
    let mut trusted = TrustedKeys::default();
    for key in &args.trust_keys {
        let public = parse_public_key(key)
            .map_err(anyhow::Error::msg)
            .with_context(|| {
                format!(
                    "--trust-key {key:?} is not a public key from `portcullis signing-key show`"
                )
            })?;
        let id = trusted.trust_public(&public).map_err(anyhow::Error::msg)?;
        tracing::info!(key_id = %id, "trusting policy signed by this key");
    }
    run_agent(
        AgentOptions {
            tenant,
            agent: args.id,
            groups,
            state_dir: args.state_dir,
            trusted,
            listen: args.listen,
            mqtt: config.mqtt.clone(),
        },
        cancel,
    )
    .await
}
