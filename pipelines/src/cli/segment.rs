//! `portcullis segment` and `portcullis signing-key`: publish segment policy for edge agents,
//! look at its history, manage which groups get which segments, and show the public key agents
//! must trust. Talks to Postgres directly and signs with the key file, as the engine does; a
//! running engine sends what is published within moments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use portcullis_engine::distribution::{encode_public_key, SegmentId, SegmentKey, SegmentRule};
use portcullis_engine::TenantId;

use crate::config::Config;
use crate::distribution::{
    add_segment_rule, list_rules, list_segments, list_versions, load_or_create_signing_key,
    load_signing_key, publish_version, remove_segment_rule, NewVersion,
};
use crate::records::TenantScope;
use crate::sinks::postgres;

#[derive(Subcommand)]
pub enum SegmentCommand {
    /// Publish a new version of a segment's policy: checked, numbered, signed with the engine's
    /// key (distribution.signing_key_file, which must exist), and sent by the engine to every
    /// agent in the segment.
    ///
    /// Modules must declare `package segments.<segment>` (or a package below it). PATH is a
    /// .rego file or a directory of them; a directory's data.json is the policy's data unless
    /// --data is given.
    ///
    ///   portcullis segment publish --tenant acme --segment hr policies/segments/hr
    #[command(verbatim_doc_comment)]
    Publish {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        segment: String,
        /// Rego files or directories (repeatable).
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<PathBuf>,
        /// A JSON object mounted at data.segments.<segment>.
        #[arg(long, value_name = "FILE")]
        data: Option<PathBuf>,
    },
    /// A segment's versions, newest first: digest, signing key, who published, when sent.
    Versions {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        segment: String,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Segments with their latest version, groups and agents behind.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Which groups get which segments (seed 000: the HR group gets the HR segment).
    #[command(subcommand)]
    Rule(RuleCommand),
}

#[derive(Subcommand)]
pub enum RuleCommand {
    /// Agents in GROUP get SEGMENT's policy (idempotent).
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        group: String,
        #[arg(long)]
        segment: String,
    },
    /// Remove a rule.
    Remove {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        group: String,
        #[arg(long)]
        segment: String,
    },
    /// List rules.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum SigningKeyCommand {
    /// Print the key id and public key agents must trust (creates the key if there is none).
    ///
    /// Give the public key to agents (they verify every version with it). To rotate:
    /// make a new key file, have agents trust both public keys, point
    /// distribution.signing_key_file at the new file, restart, then drop the old key from agents.
    Show,
}

fn segment_key(tenant: &str, segment: &str) -> anyhow::Result<SegmentKey> {
    Ok(SegmentKey {
        tenant: TenantId::parse(tenant)?,
        segment: SegmentId::parse(segment)?,
    })
}

/// Reads modules from files and directories, and data from --data or a directory's data.json.
fn read_policy(
    paths: &[PathBuf],
    data: Option<&Path>,
) -> anyhow::Result<(BTreeMap<String, String>, serde_json::Value)> {
    let mut modules = BTreeMap::new();
    let mut found_data = None;
    let mut add = |file: &Path| -> anyhow::Result<()> {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .context("module file names must be UTF-8")?
            .to_owned();
        let src = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        if modules.insert(name.clone(), src).is_some() {
            bail!("two modules are named {name}: module names must differ");
        }
        Ok(())
    };
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort();
            for f in files {
                if f.extension().is_some_and(|e| e == "rego") {
                    add(&f)?;
                } else if f.file_name().is_some_and(|n| n == "data.json") {
                    found_data = Some(f);
                }
            }
        } else {
            add(path)?;
        }
    }
    if modules.is_empty() {
        bail!("no .rego modules found in {paths:?}");
    }
    let data = match data.map(Path::to_owned).or(found_data) {
        Some(file) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?
        }
        None => serde_json::json!({}),
    };
    Ok((modules, data))
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

fn scope(tenant: Option<&str>) -> anyhow::Result<TenantScope> {
    Ok(match tenant {
        Some(t) => TenantScope::Only(vec![TenantId::parse(t)?]),
        None => TenantScope::All,
    })
}

/// Runs a segment command. Must be called inside [`crate::runtime::block_on`].
pub async fn run(config: &Config, cmd: SegmentCommand) -> anyhow::Result<()> {
    // Refuse bad input before touching the database.
    let publish = match &cmd {
        SegmentCommand::Publish {
            tenant,
            segment,
            paths,
            data,
        } => Some((
            segment_key(tenant, segment)?,
            read_policy(paths, data.as_deref())?,
        )),
        _ => None,
    };
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot open Postgres")?;
    match cmd {
        SegmentCommand::Publish { .. } => {
            let (key, (modules, data)) = publish.expect("read above");
            // Never a new key here: a version signed by a key agents do not trust would become
            // the latest and be refused by every agent.
            let path = &config.distribution.signing_key_file;
            let Some(signer) = load_signing_key(path)? else {
                bail!(
                    "no signing key at {} (distribution.signing_key_file): run this where the engine runs, with its configuration, or create the key with `portcullis signing-key show` and have agents trust it",
                    path.display()
                );
            };
            let new = NewVersion {
                tenant: key.tenant,
                segment: key.segment,
                modules,
                data,
                published_by: "cli".into(),
            };
            let done =
                publish_version(&pool, new, &signer, config.distribution.max_policy_bytes).await?;
            let v = done.version;
            if done.created {
                println!(
                    "published {}/{} version {} ({}), signed by {}; a running engine sends it to the segment's agents",
                    v.tenant, v.segment, v.version, v.digest, v.key_id
                );
            } else {
                println!(
                    "unchanged: {}/{} version {} already holds this policy ({})",
                    v.tenant, v.segment, v.version, v.digest
                );
            }
        }
        SegmentCommand::Versions {
            tenant,
            segment,
            limit,
        } => {
            let key = segment_key(&tenant, &segment)?;
            let rows = list_versions(&pool, &key, None, limit.clamp(1, 500)).await?;
            if rows.is_empty() {
                println!("segment {key} has no versions yet (portcullis segment publish)");
            } else {
                println!(
                    "{:>7}  {:<23}  {:<24}  {:<18}  {:<23}  DIGEST",
                    "VERSION", "PUBLISHED", "KEY", "BY", "SENT"
                );
                for v in rows {
                    println!(
                        "{:>7}  {:<23}  {:<24}  {:<18}  {:<23}  {}",
                        v.version,
                        when(Some(v.published_at)),
                        v.key_id,
                        v.published_by,
                        when(v.sent_at),
                        v.digest
                    );
                }
            }
        }
        SegmentCommand::List { tenant } => {
            let rows = list_segments(&pool, &scope(tenant.as_deref())?).await?;
            if rows.is_empty() {
                println!(
                    "no segments yet (portcullis segment rule add, portcullis segment publish)"
                );
            } else {
                println!(
                    "{:<16}  {:<16}  {:>6}  {:<23}  {:>6}  {:>6}  GROUPS",
                    "TENANT", "SEGMENT", "LATEST", "SENT", "AGENTS", "BEHIND"
                );
                for s in rows {
                    println!(
                        "{:<16}  {:<16}  {:>6}  {:<23}  {:>6}  {:>6}  {}",
                        s.tenant_id,
                        s.segment_id,
                        s.latest_version,
                        when(s.latest_sent_at),
                        s.agents,
                        s.agents_behind,
                        s.groups.join(",")
                    );
                }
            }
        }
        SegmentCommand::Rule(RuleCommand::Add {
            tenant,
            group,
            segment,
        }) => {
            let (tenant, rule) = (TenantId::parse(&tenant)?, rule(group, &segment)?);
            add_segment_rule(&pool, &tenant, &rule).await?;
            println!(
                "tenant {tenant}: agents in group {:?} get segment {}",
                rule.group, rule.segment
            );
        }
        SegmentCommand::Rule(RuleCommand::Remove {
            tenant,
            group,
            segment,
        }) => {
            let (tenant, rule) = (TenantId::parse(&tenant)?, rule(group, &segment)?);
            if !remove_segment_rule(&pool, &tenant, &rule).await? {
                bail!(
                    "tenant {tenant} has no rule giving group {:?} segment {}",
                    rule.group,
                    rule.segment
                );
            }
            println!("removed");
        }
        SegmentCommand::Rule(RuleCommand::List { tenant }) => {
            let rows = list_rules(&pool, &scope(tenant.as_deref())?).await?;
            println!("{:<16}  {:<24}  SEGMENT", "TENANT", "GROUP");
            for r in rows {
                println!(
                    "{:<16}  {:<24}  {}",
                    r.tenant_id, r.group_name, r.segment_id
                );
            }
        }
    }
    pool.close().await;
    Ok(())
}

fn rule(group: String, segment: &str) -> anyhow::Result<SegmentRule> {
    let group = group.trim().to_owned();
    if group.is_empty() || group.len() > 200 {
        bail!("a group name is 1 to 200 characters");
    }
    Ok(SegmentRule {
        group,
        segment: SegmentId::parse(segment)?,
    })
}

/// `portcullis signing-key show`.
pub fn show_signing_key(config: &Config) -> anyhow::Result<()> {
    let path = &config.distribution.signing_key_file;
    let (signer, created) = load_or_create_signing_key(path)?;
    if created {
        eprintln!("created a new signing key in {}", path.display());
    }
    println!("key id      {}", signer.key_id());
    println!("public key  {}", encode_public_key(&signer.public_key()));
    println!("file        {}", path.display());
    Ok(())
}
