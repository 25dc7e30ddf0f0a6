//! `portcullis approval`: the approval queue from the command line (docs/approvals.md). Talks
//! to Postgres directly, as an administrator: whoever can run it on the engine's database may
//! answer any tenant's requests, so answers name who gave them (`--as`).

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use portcullis_engine::approval::{ApprovalStatus, Resolution};
use portcullis_engine::TenantId;
use uuid::Uuid;

use crate::approvals::{self, Answer, AnswerError, ApprovalQuery, ApprovalRow};
use crate::config::Config;
use crate::records::TenantScope;
use crate::sinks::postgres;

#[derive(Subcommand)]
pub enum ApprovalCommand {
    /// Requests, newest first (pending ones by default).
    ///
    ///   portcullis approval list --tenant acme
    ///   portcullis approval list --status all
    #[command(verbatim_doc_comment)]
    List {
        #[arg(long)]
        tenant: Option<String>,
        /// pending, approved, denied, expired or all.
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One request, whole.
    Show { id: Uuid },
    /// Approve a pending request: the same request then passes for approvals.grant_secs.
    Approve(AnswerArgs),
    /// Deny a pending request.
    Deny(AnswerArgs),
}

#[derive(clap::Args)]
pub struct AnswerArgs {
    /// The request's id (from `approval list`, or the X-Portcullis-Approval-Id a proxy got).
    id: Uuid,
    /// Why, for the record (it goes into the answer's receipt).
    #[arg(long)]
    note: Option<String>,
    /// Who answers, as recorded; default cli:$USER.
    #[arg(long = "as", value_name = "NAME")]
    by: Option<String>,
}

/// Runs an approval command. Must be called inside [`crate::runtime::block_on`].
pub async fn run(config: &Config, cmd: ApprovalCommand) -> anyhow::Result<()> {
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot open Postgres")?;
    match cmd {
        ApprovalCommand::List {
            tenant,
            status,
            limit,
        } => {
            let status = match status.as_str() {
                "all" => None,
                s => Some(ApprovalStatus::parse(s).with_context(|| {
                    format!("--status {s:?}: pending, approved, denied, expired or all")
                })?),
            };
            let tenants = match tenant {
                Some(t) => TenantScope::Only(vec![TenantId::parse(&t)?]),
                None => TenantScope::All,
            };
            let q = ApprovalQuery {
                tenants,
                status,
                principal: None,
                limit: limit.clamp(1, crate::records::MAX_PAGE),
            };
            print_list(&approvals::list(&pool, &q).await?);
        }
        ApprovalCommand::Show { id } => {
            let row = approvals::get(&pool, id)
                .await?
                .with_context(|| format!("no approval request {id}"))?;
            println!("{}", serde_json::to_string_pretty(&row)?);
        }
        ApprovalCommand::Approve(a) => answer(&pool, config, a, Resolution::Approve).await?,
        ApprovalCommand::Deny(a) => answer(&pool, config, a, Resolution::Deny).await?,
    }
    pool.close().await;
    Ok(())
}

async fn answer(
    pool: &sqlx::PgPool,
    config: &Config,
    a: AnswerArgs,
    resolution: Resolution,
) -> anyhow::Result<()> {
    let by = a.by.unwrap_or_else(crate::cli::cli_user);
    let row = approvals::answer(
        pool,
        Answer {
            id: a.id,
            resolution,
            by: &by,
            note: a.note.as_deref().filter(|n| !n.trim().is_empty()),
        },
        &config.approvals,
        config.evidence.enabled,
        |_| true,
    )
    .await
    .map_err(|e| match e {
        AnswerError::Db(e) => anyhow::Error::new(e).context("cannot answer in Postgres"),
        other => anyhow::anyhow!(other),
    })?;
    match row.grant_until {
        Some(until) => println!(
            "approval {} approved by {by}: {} {} passes until {}",
            row.approval_id,
            row.principal.as_deref().unwrap_or("(nobody signed in)"),
            row.resource,
            when(until)
        ),
        None => println!("approval {} {} by {by}", row.approval_id, row.status),
    }
    Ok(())
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn print_list(rows: &[ApprovalRow]) {
    if rows.is_empty() {
        println!("no approval requests");
        return;
    }
    println!(
        "{:<36}  {:<10}  {:<8}  {:<19}  {:<16}  REQUEST",
        "ID", "TENANT", "STATUS", "EXPIRES / ANSWERED", "PRINCIPAL"
    );
    for r in rows {
        let at = r.answered_at.unwrap_or(r.expires_at);
        println!(
            "{:<36}  {:<10}  {:<8}  {:<19}  {:<16}  {} ({})",
            r.approval_id,
            r.tenant_id,
            r.status,
            at.format("%Y-%m-%d %H:%M:%S"),
            r.principal.as_deref().unwrap_or("-"),
            r.resource,
            r.rule
        );
    }
}
