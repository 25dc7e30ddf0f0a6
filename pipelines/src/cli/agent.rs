//! `portcullis agent`: the reference edge agent.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use portcullis_engine::decode::valid_agent_id;
use portcullis_engine::distribution::{parse_public_key, TrustedKeys, MAX_GROUPS};
use portcullis_engine::TenantId;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::agent::{run_agent, AgentOptions};
use crate::config::Config;
use crate::distribution::{enroll_agent, list_enrollments, revoke_agent, AgentCredentials};
use crate::records::TenantScope;
use crate::sinks::postgres;

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
    /// Give an agent broker credentials, bound to its client id and confined to its own
    /// topics, and fix its groups (they decide its segments; what it says in its hello is
    /// then ignored). Enrolling again makes a new password and disconnects the old one.
    ///
    /// Needs a Mosquitto with the dynamic security plugin and its admin in [mqtt]
    /// admin_username (docs/operations.md). The password is shown once:
    ///   portcullis agent enroll --tenant acme --id laptop-1 --groups hr --out laptop-1.toml
    ///   portcullis agent run --credentials laptop-1.toml ...
    #[command(verbatim_doc_comment)]
    Enroll(EnrollArgs),
    /// Take an agent's broker credentials away: it is disconnected and cannot connect again.
    Revoke {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
    },
    /// List enrolled agents.
    Enrollments {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Args)]
pub struct EnrollArgs {
    #[arg(long)]
    tenant: String,
    /// The agent's id (as it will run with `--id`).
    #[arg(long)]
    id: String,
    /// Its groups, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    groups: Vec<String>,
    /// Write the credentials to this file (created 0600) instead of printing them.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
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
    /// The agent's broker credentials, from `portcullis agent enroll --out` (readable by its
    /// owner only). Without it the agent connects anonymously.
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
}

/// Runs an agent command until Ctrl-C. Must be called inside [`crate::runtime::block_on`].
pub async fn run(
    config: &Config,
    cmd: AgentCommand,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let args = match cmd {
        AgentCommand::Run(args) => args,
        AgentCommand::Enroll(args) => return enroll(config, args).await,
        AgentCommand::Revoke { tenant, id } => {
            let pool = postgres::migrate(&config.postgres).await?;
            let tenant = TenantId::parse(&tenant)?;
            if !revoke_agent(&pool, &config.mqtt, &tenant, &id).await? {
                bail!("agent {id:?} of tenant {tenant} is not enrolled");
            }
            println!(
                "revoked {tenant}/{id}: it is disconnected and its credentials no longer work"
            );
            return Ok(());
        }
        AgentCommand::Enrollments { tenant } => {
            let pool = postgres::migrate(&config.postgres).await?;
            let scope = match tenant {
                Some(t) => TenantScope::Only(vec![TenantId::parse(&t)?]),
                None => TenantScope::All,
            };
            for row in list_enrollments(&pool, &scope).await? {
                println!(
                    "{}  {}/{}  groups {}  by {}",
                    row.enrolled_at.format("%Y-%m-%d %H:%M:%S"),
                    row.tenant_id,
                    row.agent_id,
                    row.groups.join(","),
                    row.enrolled_by
                );
            }
            return Ok(());
        }
    };
    let tenant = TenantId::parse(&args.tenant)?;
    check_agent_id(&args.id)?;
    let groups = clean_groups(&args.groups)?;
    let mut mqtt = config.mqtt.clone();
    // Never the engine's account: the agent's own, or none.
    (mqtt.username, mqtt.password) = (None, None);
    if let Some(file) = &args.credentials {
        let creds = read_credentials(file)?;
        if creds.tenant_id != tenant.as_str() || creds.agent_id != args.id {
            bail!(
                "{} holds the credentials of {}/{}, not of {}/{}",
                file.display(),
                creds.tenant_id,
                creds.agent_id,
                tenant,
                args.id
            );
        }
        (mqtt.username, mqtt.password) = (Some(creds.username), Some(creds.password));
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
            mqtt,
        },
        cancel,
    )
    .await
}

fn check_agent_id(id: &str) -> anyhow::Result<()> {
    if !valid_agent_id(id) {
        bail!(
            "agent id {id:?} must be 1 to 128 characters of A-Z a-z 0-9 _ - ., starting with a letter or digit"
        );
    }
    Ok(())
}

fn clean_groups(given: &[String]) -> anyhow::Result<Vec<String>> {
    let groups: Vec<String> = given
        .iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    if groups.is_empty() || groups.len() > MAX_GROUPS {
        bail!("give 1 to {MAX_GROUPS} groups with --groups");
    }
    Ok(groups)
}

/// An agent's credentials file, as `agent enroll --out` writes it.
#[derive(Serialize, Deserialize)]
struct CredentialsFile {
    tenant_id: String,
    agent_id: String,
    username: String,
    password: String,
    client_id: String,
}

fn credentials_toml(c: &AgentCredentials) -> String {
    let file = CredentialsFile {
        tenant_id: c.tenant_id.clone(),
        agent_id: c.agent_id.clone(),
        username: c.username.clone(),
        password: c.password.clone(),
        client_id: c.client_id.clone(),
    };
    format!(
        "# Broker credentials of agent {}/{} (groups {}). Keep this file private:\n\
         # portcullis agent run --tenant {} --id {} --credentials <this file> ...\n{}",
        c.tenant_id,
        c.agent_id,
        c.groups.join(","),
        c.tenant_id,
        c.agent_id,
        toml::to_string(&file).expect("plain strings")
    )
}

fn read_credentials(path: &Path) -> anyhow::Result<CredentialsFile> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the credentials file {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the credentials file {} may be read by others (mode {mode:o}): run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the credentials file {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "{} is not a credentials file from `portcullis agent enroll`",
            path.display()
        )
    })
}

async fn enroll(config: &Config, args: EnrollArgs) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant)?;
    check_agent_id(&args.id)?;
    let groups = clean_groups(&args.groups)?;
    // The file first: enrolling replaces the old password, so the new one must have a place.
    let out = match &args.out {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            // An existing file keeps its mode on open: make sure it is private.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            Some((path, file))
        }
        None => None,
    };
    let pool = postgres::migrate(&config.postgres).await?;
    let by = crate::cli::cli_user();
    let creds = enroll_agent(&pool, &config.mqtt, &tenant, &args.id, groups, &by).await?;
    let text = credentials_toml(&creds);
    match out {
        Some((path, mut file)) => {
            if let Err(e) = file
                .write_all(text.as_bytes())
                .and_then(|_| file.sync_all())
            {
                // Shown rather than lost: the old password no longer works.
                print!("{text}");
                bail!(
                    "enrolled, but cannot write {}: {e}; the credentials are above",
                    path.display()
                );
            }
            eprintln!(
                "enrolled {}/{} (client id {}); credentials in {}",
                creds.tenant_id,
                creds.agent_id,
                creds.client_id,
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}
