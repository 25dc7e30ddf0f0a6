//! `portcullis token`: make, list and revoke the bearer tokens the HTTP API and the console
//! accept. Talks to Postgres directly, so the first admin token needs no running engine.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use portcullis_engine::access::Grants;

use crate::access::{
    create_token, expiry_from, list_tokens, revoke_token, NewToken, TokenRecord,
    DEFAULT_TOKEN_LIFETIME,
};
use crate::config::Config;
use crate::sinks::postgres;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it. It is shown this once: only its hash is stored.
    ///
    /// The token goes to standard output alone, the rest to standard error, so
    /// `TOKEN=$(portcullis token create --name me --scope admin)` captures just the token.
    /// Send it as `Authorization: Bearer <token>`, or paste it into the console's sign-in.
    ///
    /// Scopes (repeat --scope for several):
    ///   admin           every tenant, and token administration
    ///   admin:<tenant>  query, read and act on one tenant (e.g. replay its dead letters)
    ///   read:<tenant>   read one tenant's events, decisions, dead letters and bundle status
    ///   approve:<tenant> approve or deny one tenant's approval requests
    ///   signal:<tenant>  send trust signals about one tenant's principals and agents
    ///   comply:<tenant>  work one tenant's compliance violations (acknowledge, suppress, resolve)
    ///   query:<tenant>  ask one tenant's policy questions (POST /v1/data/tenants/<tenant>/...)
    #[command(verbatim_doc_comment)]
    Create {
        /// What the token is for, e.g. "grafana" or "ci"; shown in `token list`.
        #[arg(long)]
        name: String,
        /// A scope the token holds (repeatable): admin, admin:<tenant>, read:<tenant>,
        /// query:<tenant>, approve:<tenant>, signal:<tenant>, comply:<tenant>.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// How long it lives: e.g. 90d, 12h, 1y, or "never".
        #[arg(long, value_name = "DURATION", default_value = DEFAULT_TOKEN_LIFETIME)]
        expires_in: String,
    },
    /// List tokens (never their secrets): id, name, scopes, state, expiry and last use.
    List,
    /// Revoke a token by its id, or by its name when one active token has it. Engines stop
    /// accepting it at once.
    Revoke {
        /// The token's id (from `token list`) or its name.
        #[arg(value_name = "ID_OR_NAME")]
        which: String,
    },
}

/// Runs a token command. Must be called inside [`crate::runtime::block_on`].
pub async fn run(config: &Config, cmd: TokenCommand) -> anyhow::Result<()> {
    // Refuse bad input before touching the database.
    let create = match &cmd {
        TokenCommand::Create {
            name,
            scopes,
            expires_in,
        } => Some(NewToken {
            name: name.clone(),
            grants: Grants::parse(scopes)?,
            expires_at: expiry_from(expires_in, Utc::now())?,
            created_by: "cli".into(),
        }),
        _ => None,
    };
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot open Postgres")?;
    match (cmd, create) {
        (TokenCommand::Create { .. }, Some(new)) => {
            let (record, secret) = create_token(&pool, new).await?;
            eprintln!(
                "token {:?} ({}) holds {}; expires {}.",
                record.name,
                record.token_id,
                record.scopes.join(", "),
                when(record.expires_at, "never")
            );
            eprintln!("It is shown only now. Send it as 'Authorization: Bearer <token>':");
            println!("{}", secret.expose());
        }
        (TokenCommand::List, _) => print_tokens(&list_tokens(&pool).await?),
        (TokenCommand::Revoke { which }, _) => {
            let r = revoke_token(&pool, &which).await?;
            println!(
                "token {:?} ({}) revoked at {}",
                r.name,
                r.token_id,
                when(r.revoked_at, "-")
            );
        }
        (TokenCommand::Create { .. }, None) => unreachable!("made above"),
    }
    pool.close().await;
    Ok(())
}

fn when(at: Option<DateTime<Utc>>, none: &str) -> String {
    at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| none.to_owned())
}

fn print_tokens(tokens: &[TokenRecord]) {
    if tokens.is_empty() {
        println!("no tokens yet: make one with `portcullis token create --name me --scope admin`");
        return;
    }
    println!(
        "{:<36}  {:<20}  {:<8}  {:<7}  {:<20}  {:<20}  SCOPES",
        "ID", "NAME", "HINT", "STATE", "EXPIRES", "LAST USED"
    );
    let now = Utc::now();
    for t in tokens {
        let state = serde_json::to_value(t.state(now))
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        println!(
            "{:<36}  {:<20}  {:<8}  {:<7}  {:<20}  {:<20}  {}",
            t.token_id,
            t.name,
            t.hint,
            state,
            when(t.expires_at, "never"),
            when(t.last_used_at, "never"),
            t.scopes.join(",")
        );
    }
}
