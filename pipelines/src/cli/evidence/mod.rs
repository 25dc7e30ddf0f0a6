//! `portcullis evidence …` and `portcullis verify`: the receipt logs from the command line.
//! `export` writes a tenant's bundle from Postgres; `verify` checks one offline, needing
//! nothing but the file (and, to pin the log's key, its public key).

mod export;
mod verify;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use portcullis_engine::TenantId;

use crate::config::Config;
use crate::evidence::{
    list_checkpoints, list_keys, load_or_create_log_key, receipt_with_proof, register_key,
    retire_key, rotate_log_key, ReceiptKey,
};
use crate::sinks::postgres;

pub use verify::{verify_bundle, VerifyArgs};

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Write a tenant's receipts, with their checkpoints, proofs and the log's public keys, to
    /// one bundle file that `portcullis verify` checks offline.
    ///
    ///   portcullis evidence export --tenant acme --from 2026-12-01T00:00:00Z -o acme.bundle
    ///
    /// The bundle ends at the first checkpoint after --to, so every receipt in it is signed;
    /// receipts written since the last checkpoint (seconds ago) are left out and counted.
    #[command(verbatim_doc_comment)]
    Export(export::ExportArgs),
    /// The public keys that have signed checkpoints (give them to whoever verifies bundles).
    Keys,
    /// Replace the engine's checkpoint key with a new one. The old key file is kept beside it
    /// (`.retired-<id>`) and the old key marked retired: what it signed still verifies.
    /// Restart the engines that use the key file.
    RotateKey,
    /// Recent signed checkpoints, newest first.
    Checkpoints {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One receipt with its inclusion proof, checked against its checkpoint here.
    Receipt(ReceiptArgs),
}

#[derive(Args)]
pub struct ReceiptArgs {
    #[arg(long)]
    tenant: String,
    /// The receipt's leaf index in the tenant's log.
    #[arg(
        long,
        conflicts_with = "decision",
        required_unless_present = "decision"
    )]
    index: Option<u64>,
    /// The decision the receipt is for.
    #[arg(long)]
    decision: Option<uuid::Uuid>,
}

pub async fn run(config: &Config, cmd: EvidenceCommand) -> anyhow::Result<()> {
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot open Postgres")?;
    match cmd {
        EvidenceCommand::Export(args) => export::export(config, &pool, args).await?,
        EvidenceCommand::Keys => {
            let keys = list_keys(&pool).await?;
            if keys.is_empty() {
                println!(
                    "no key has signed a checkpoint yet (the engine makes one on its first start)"
                );
            }
            for k in keys {
                let state = match k.retired_at {
                    Some(at) => format!("retired {}", at.format("%Y-%m-%d %H:%M:%S")),
                    None => "active".into(),
                };
                println!(
                    "{}  ({state}, since {})",
                    k.public_key,
                    k.created_at.format("%Y-%m-%d %H:%M:%S")
                );
            }
        }
        EvidenceCommand::RotateKey => {
            let e = &config.evidence;
            // Make sure the current key is on record before it is put aside.
            let (current, _) = load_or_create_log_key(&e.key_file, &e.origin)?;
            register_key(&pool, &current.label(), current.public_text()).await?;
            let (new, old) = rotate_log_key(&e.key_file, &e.origin)?;
            register_key(&pool, &new.label(), new.public_text()).await?;
            if let Some(old) = old {
                retire_key(&pool, &old.label()).await?;
                println!("retired {}", old.public_text());
            }
            println!("new key {}", new.public_text());
            println!(
                "restart the engines using {} to sign with it",
                e.key_file.display()
            );
        }
        EvidenceCommand::Checkpoints { tenant, limit } => {
            let tenants = tenant.map(|t| vec![t]);
            let rows = list_checkpoints(&pool, tenants.as_deref(), None, limit).await?;
            if rows.is_empty() {
                println!("no checkpoints");
            }
            for c in rows {
                println!(
                    "{}  {:<16} size {:>10}  root {}  by {}",
                    c.signed_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                    c.tenant,
                    c.size,
                    c.root,
                    c.signed_by
                );
            }
        }
        EvidenceCommand::Receipt(args) => {
            TenantId::parse(&args.tenant)?;
            let key = match (args.index, args.decision) {
                (Some(i), _) => ReceiptKey::Index(i),
                (None, Some(d)) => ReceiptKey::Decision(d),
                (None, None) => unreachable!("clap requires one"),
            };
            let Some(p) = receipt_with_proof(&pool, &args.tenant, key, None).await? else {
                anyhow::bail!("tenant {} has no such receipt", args.tenant);
            };
            println!("{}", serde_json::to_string_pretty(&p)?);
            if p.status == "failed" {
                anyhow::bail!(
                    "receipt {} does not verify: {}",
                    p.leaf_index,
                    p.problem.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// An RFC 3339 time, for `--from` and `--to`.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}: give a time like 2026-12-01T00:00:00Z"))
}
