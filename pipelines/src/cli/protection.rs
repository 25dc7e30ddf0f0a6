//! `portcullis protection`: configure units and see their changes of level
//! (docs/protection.md). Talks to Postgres directly; engines pick up changes within
//! `protection.refresh_ms`.

use anyhow::Context;
use clap::Subcommand;
use portcullis_engine::protection::{is_unit_name_valid, Selector};
use portcullis_engine::TenantId;

use crate::config::Config;
use crate::protection::{list_transitions, list_units, remove_unit, set_unit};
use crate::records::TenantScope;
use crate::sinks::postgres;

#[derive(Subcommand)]
pub enum ProtectionCommand {
    /// Add or change a unit: the decisions its selector covers share one load, measured
    /// against its capacity.
    ///
    ///   portcullis protection set --tenant acme --unit iam \
    ///       --selector cloudtrail:iam.amazonaws.com --capacity 50
    ///
    /// Selectors: cloudtrail:<eventSource>, device:<service>, api:<rule path>,
    /// gateway:<host>, approvals (approval requests, against the approvers' rate); a trailing
    /// '*' makes a prefix (cloudtrail:*).
    #[command(verbatim_doc_comment)]
    Set {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        selector: String,
        /// What the unit serves per second (μ).
        #[arg(long, value_name = "PER_SECOND")]
        capacity: f64,
    },
    /// Remove a unit: its decisions are permissive again.
    Remove {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        unit: String,
    },
    /// The configured units.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Changes of level, newest first.
    Transitions {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

pub async fn run(config: &Config, cmd: ProtectionCommand) -> anyhow::Result<()> {
    // Refuse bad input before touching the database.
    let checked = match &cmd {
        ProtectionCommand::Set {
            tenant,
            unit,
            selector,
            capacity,
        } => {
            anyhow::ensure!(
                is_unit_name_valid(unit),
                "--unit {unit:?}: a letter or digit, then up to 62 letters, digits, '_', '.' or '-'"
            );
            anyhow::ensure!(
                capacity.is_finite() && *capacity > 0.0,
                "--capacity must be a positive number of decisions per second"
            );
            Some((TenantId::parse(tenant)?, Selector::parse(selector)?))
        }
        _ => None,
    };
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot open Postgres")?;
    let scope = |t: &Option<String>| -> anyhow::Result<TenantScope> {
        Ok(match t {
            Some(t) => TenantScope::Only(vec![TenantId::parse(t)?]),
            None => TenantScope::All,
        })
    };
    match cmd {
        ProtectionCommand::Set { unit, capacity, .. } => {
            let (tenant, selector) = checked.expect("checked above");
            let row = set_unit(&pool, &tenant, &unit, &selector, capacity).await?;
            println!(
                "unit {}/{}: {} at {} per second",
                row.tenant_id, row.unit, row.selector, row.capacity_per_sec
            );
        }
        ProtectionCommand::Remove { tenant, unit } => {
            let tenant = TenantId::parse(&tenant)?;
            anyhow::ensure!(
                remove_unit(&pool, &tenant, &unit).await?,
                "tenant {tenant} has no unit {unit:?}"
            );
            println!("unit {tenant}/{unit} removed");
        }
        ProtectionCommand::List { tenant } => {
            let rows = list_units(&pool, &scope(&tenant)?).await?;
            if rows.is_empty() {
                println!("no units: every decision is permissive (add one with `portcullis protection set`)");
            }
            for r in rows {
                println!(
                    "{:<10}  {:<16}  {:<40}  {}/s",
                    r.tenant_id, r.unit, r.selector, r.capacity_per_sec
                );
            }
        }
        ProtectionCommand::Transitions { tenant, limit } => {
            let rows = list_transitions(
                &pool,
                &scope(&tenant)?,
                limit.clamp(1, crate::records::MAX_PAGE),
            )
            .await?;
            for r in rows {
                println!(
                    "{}  {:<10}  {:<16}  {} -> {}  rho {:.2}  (lambda {:.2}/s, mu {:.2}/s)",
                    r.at.format("%Y-%m-%d %H:%M:%S"),
                    r.tenant_id,
                    r.unit,
                    r.from_level,
                    r.to_level,
                    r.rho,
                    r.lambda,
                    r.mu
                );
            }
        }
    }
    pool.close().await;
    Ok(())
}
