//! `portcullis signal`: external trust signals from the command line (docs/signals.md).
//! Talks to Postgres directly; engines apply a signal within `signals.refresh_ms`.

use std::io::Read;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;
use portcullis_engine::signals::Signal;
use portcullis_engine::TenantId;
use serde_json::Value as Json;

use crate::config::Config;
use crate::records::TenantScope;
use crate::signals::{keyed_or, list_signals, store_signals, SignalQuery};
use crate::sinks::postgres;

#[derive(Subcommand)]
pub enum SignalCommand {
    /// Send signals: one JSON signal, or an array, from FILE or standard input (`-`).
    ///
    ///   echo '{"tenant_id": "acme", "subject_kind": "principal",
    ///          "subject": "arn:aws:iam::111111111111:user/alice", "kind": "leaked_credentials",
    ///          "severity": "high", "source": "guardduty", "ttl_secs": 3600}' |
    ///     portcullis signal send -
    ///
    /// About a protection unit: "subject_kind": "unit", "subject": "iam"; a high one holds it at
    /// require_approval, a critical one at read_only, while it lasts.
    #[command(verbatim_doc_comment)]
    Send {
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Signals, newest first (those that still last, unless --all).
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

pub async fn run(config: &Config, cmd: SignalCommand) -> anyhow::Result<()> {
    match cmd {
        SignalCommand::Send { file } => {
            let mut text = String::new();
            if file == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {file}"))?;
            }
            let value: Json = serde_json::from_str(&text).context("not JSON")?;
            let items = match value {
                Json::Array(items) => items,
                one => vec![one],
            };
            let now = Utc::now();
            let mut signals = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let s = Signal::from_json(item, now).with_context(|| format!("signal {i}"))?;
                let key = keyed_or(&s, || format!("cli:{}", uuid::Uuid::now_v7()));
                signals.push((key, s));
            }
            let pool = postgres::migrate(&config.postgres)
                .await
                .context("cannot open Postgres")?;
            let n = store_signals(&pool, &signals, "cli").await?;
            println!("{n} signal(s) stored; engines apply them within signals.refresh_ms");
            pool.close().await;
        }
        SignalCommand::List {
            tenant,
            subject,
            all,
            limit,
        } => {
            let tenants = match tenant {
                Some(t) => TenantScope::Only(vec![TenantId::parse(&t)?]),
                None => TenantScope::All,
            };
            let pool = postgres::migrate(&config.postgres)
                .await
                .context("cannot open Postgres")?;
            let rows = list_signals(
                &pool,
                &SignalQuery {
                    tenants,
                    subject,
                    active: !all,
                    limit: limit.clamp(1, crate::records::MAX_PAGE),
                },
            )
            .await?;
            if rows.is_empty() {
                println!("no signals");
            }
            for r in rows {
                println!(
                    "{}  {:<10}  {:<8}  {:<9}  {:<22}  {:<14}  until {}  {}",
                    r.received_at.format("%Y-%m-%d %H:%M:%S"),
                    r.tenant_id,
                    r.severity,
                    r.subject_kind,
                    r.kind,
                    r.source,
                    r.expires_at.format("%Y-%m-%d %H:%M:%S"),
                    r.subject
                );
            }
            pool.close().await;
        }
    }
    Ok(())
}
