//! `portcullis gateway nginx | traefik`: the proxy configuration that puts a site behind a
//! tenant's gateway rule (docs/gateway.md), printed to paste or include, optionally with a
//! fresh `query` token for the proxy.

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Subcommand};
use portcullis_engine::access::Grants;
use portcullis_engine::policy::RulePath;
use portcullis_engine::TenantId;

use crate::access::{create_token, expiry_from, NewToken};
use crate::config::Config;
use crate::sinks::postgres;

#[derive(Subcommand)]
pub enum GatewayCommand {
    /// Print an nginx snippet for a `server { }` block: every request in it is first asked
    /// about (auth_request) and passes only when the rule allows it.
    ///
    ///   portcullis gateway nginx --tenant acme --create-token > /etc/nginx/portcullis-acme.conf
    ///   # then, in the site's server block:  include portcullis-acme.conf;
    ///
    /// The signed-in user is read from an nginx variable (--user-variable): `$remote_user`
    /// with auth_basic, or a header an authenticating proxy in front sets, such as
    /// `$http_x_forwarded_user`.
    #[command(verbatim_doc_comment)]
    Nginx(NginxArgs),
    /// Print Traefik dynamic configuration (YAML): a `portcullis-<tenant>` middleware chain to
    /// put on routers. Traefik's ForwardAuth passes the client's own headers on and cannot add
    /// one, so the chain adds the proxy's token as X-Portcullis-Token, asks, then removes it
    /// before the application sees the request.
    ///
    ///   portcullis gateway traefik --tenant acme --create-token > dynamic/portcullis-acme.yml
    #[command(verbatim_doc_comment)]
    Traefik(Target),
}

/// Which rule the proxy asks, where, and with what token.
#[derive(Args)]
pub struct Target {
    /// The tenant whose policy decides.
    #[arg(long)]
    tenant: String,
    /// The rule, below the tenant's package, that answers (see policies/tenants/acme/gateway.rego).
    #[arg(long, default_value = "gateway/allow")]
    rule: String,
    /// The engine's address as the proxy reaches it; default: http.listen of this configuration.
    #[arg(long, value_name = "URL")]
    engine: Option<String>,
    /// Make a `query:<tenant>` token named gateway-<tenant> (in Postgres) and write it into the
    /// output; without this the output holds PORTCULLIS_TOKEN to replace with one.
    #[arg(long)]
    create_token: bool,
}

#[derive(Args)]
pub struct NginxArgs {
    #[command(flatten)]
    target: Target,
    /// The nginx variable that holds the signed-in user (sent as X-Forwarded-User).
    #[arg(long, default_value = "$remote_user", value_name = "VARIABLE")]
    user_variable: String,
    /// The nginx variable that holds the user's groups, comma-separated (sent as
    /// X-Forwarded-Groups); none by default.
    #[arg(long, value_name = "VARIABLE")]
    groups_variable: Option<String>,
}

/// Prints the configuration. Must be called inside [`crate::runtime::block_on`].
pub async fn run(config: &Config, cmd: GatewayCommand) -> anyhow::Result<()> {
    let target = match &cmd {
        GatewayCommand::Nginx(a) => &a.target,
        GatewayCommand::Traefik(t) => t,
    };
    let tenant = TenantId::parse(&target.tenant)?;
    RulePath::from_url(&target.rule).with_context(|| format!("--rule {:?}", target.rule))?;
    for variable in match &cmd {
        GatewayCommand::Nginx(a) => vec![Some(&a.user_variable), a.groups_variable.as_ref()],
        GatewayCommand::Traefik(_) => vec![],
    }
    .into_iter()
    .flatten()
    {
        anyhow::ensure!(
            is_nginx_variable(variable),
            "{variable:?} is not an nginx variable such as $remote_user"
        );
    }
    let proxy = match &cmd {
        GatewayCommand::Nginx(_) => "nginx",
        GatewayCommand::Traefik(_) => "traefik",
    };
    let url = format!(
        "{}/v1/gateway/{tenant}/{}?proxy={proxy}",
        target
            .engine
            .clone()
            .unwrap_or_else(|| engine_url(&config.http.listen))
            .trim_end_matches('/'),
        target.rule.trim_matches('/')
    );
    let token = if target.create_token {
        make_token(config, &tenant).await?
    } else {
        eprintln!(
            "replace PORTCULLIS_TOKEN with a token holding query:{tenant} (or pass --create-token)"
        );
        "PORTCULLIS_TOKEN".to_owned()
    };
    let text = match &cmd {
        GatewayCommand::Nginx(a) => nginx_snippet(
            &tenant,
            &url,
            &token,
            &a.user_variable,
            a.groups_variable.as_deref(),
        ),
        GatewayCommand::Traefik(_) => traefik_config(&tenant, &url, &token),
    };
    print!("{text}");
    Ok(())
}

async fn make_token(config: &Config, tenant: &TenantId) -> anyhow::Result<String> {
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot open Postgres to make the proxy's token")?;
    let (record, secret) = create_token(
        &pool,
        NewToken {
            name: format!("gateway-{tenant}"),
            grants: Grants::parse(&[format!("query:{tenant}")])?,
            expires_at: expiry_from("1y", Utc::now())?,
            created_by: "cli".into(),
        },
    )
    .await?;
    pool.close().await;
    eprintln!(
        "made token {:?} ({}) holding query:{tenant}, for a year; the output holds it: keep it unreadable to others",
        record.name, record.token_id
    );
    Ok(secret.expose().to_owned())
}

/// `http://host:port` for `listen`, with a wildcard address replaced by loopback.
fn engine_url(listen: &str) -> String {
    let listen = listen
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "[::1]:");
    format!("http://{listen}")
}

fn is_nginx_variable(v: &str) -> bool {
    v.strip_prefix('$').is_some_and(|name| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

fn nginx_snippet(
    tenant: &TenantId,
    url: &str,
    token: &str,
    user: &str,
    groups: Option<&str>,
) -> String {
    // Set, or cleared: the client's own X-Forwarded-Groups must never reach the engine.
    let groups = groups.unwrap_or("\"\"");
    format!(
        r#"# Portcullis forward-auth for tenant {tenant} (portcullis gateway nginx; docs/gateway.md).
# Include inside a server {{ }} block: every request in it is asked about first and passes
# only on a 200; a 403 (or any error: the engine unreachable, a bad token) stops it. A 403
# that waits for an approver carries X-Portcullis-Approval-Id (docs/approvals.md).
auth_request /_portcullis;
auth_request_set $portcullis_decision $upstream_http_x_portcullis_decision_id;
auth_request_set $portcullis_approval $upstream_http_x_portcullis_approval_id;
add_header X-Portcullis-Decision-Id $portcullis_decision always;
add_header X-Portcullis-Approval-Id $portcullis_approval always;

location = /_portcullis {{
        internal;
        auth_request off;
        proxy_pass {url};
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header Authorization "Bearer {token}";
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-User {user};
        proxy_set_header X-Forwarded-Groups {groups};
        # Only the proxy's token speaks for it.
        proxy_set_header X-Portcullis-Token "";
}}
"#
    )
}

fn traefik_config(tenant: &TenantId, url: &str, token: &str) -> String {
    format!(
        r#"# Portcullis forward-auth for tenant {tenant} (portcullis gateway traefik; docs/gateway.md).
# On a router, in this order:
#   middlewares: [portcullis-{tenant}-unsay, <your authentication middleware>, portcullis-{tenant}]
# Traefik does not drop a client's X-Forwarded-User and X-Forwarded-Groups: -unsay clears them
# first, so only what your authentication sets afterwards reaches the engine.
http:
  middlewares:
    portcullis-{tenant}-unsay:
      headers:
        customRequestHeaders:
          X-Forwarded-User: ""
          X-Forwarded-Groups: ""
    portcullis-{tenant}:
      chain:
        middlewares:
          - portcullis-{tenant}-token
          - portcullis-{tenant}-ask
          - portcullis-{tenant}-untoken
    portcullis-{tenant}-token:
      headers:
        customRequestHeaders:
          X-Portcullis-Token: "{token}"
    portcullis-{tenant}-ask:
      forwardAuth:
        address: "{url}"
        authResponseHeaders:
          - X-Portcullis-Decision-Id
          - X-Portcullis-Approval-Id
    portcullis-{tenant}-untoken:
      headers:
        customRequestHeaders:
          X-Portcullis-Token: ""
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listens_are_reached_on_loopback_and_variables_checked() {
        assert_eq!(engine_url("0.0.0.0:8181"), "http://127.0.0.1:8181");
        assert_eq!(engine_url("[::]:8181"), "http://[::1]:8181");
        assert_eq!(engine_url("10.0.0.5:80"), "http://10.0.0.5:80");
        assert!(is_nginx_variable("$remote_user"));
        assert!(is_nginx_variable("$http_x_forwarded_user"));
        for bad in ["remote_user", "$", "$a;b", "$a b", "${a}"] {
            assert!(!is_nginx_variable(bad), "{bad}");
        }
    }
}
