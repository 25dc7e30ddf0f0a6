//! `portcullis model anomalies | trust | settings`: what the anomaly models found, and the
//! settings they found it with.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use portcullis_engine::anomaly::{AnomalySettings, ModelScope};
use portcullis_engine::TenantId;
use sqlx::PgPool;

use super::tenant_scope;
use crate::anomaly::{
    line_settings, list_anomalies, list_settings, list_trust, set_line_settings, AnomalyQuery,
    TrustQuery,
};

#[derive(Args)]
pub struct AnomaliesArgs {
    /// Only this tenant's.
    #[arg(long)]
    tenant: Option<String>,
    /// Only cloudtrail or device anomalies.
    #[arg(long, value_parser = ["cloudtrail", "device"])]
    scope: Option<String>,
    /// Only this principal's or agent's.
    #[arg(long)]
    subject: Option<String>,
    /// Only those found since this RFC 3339 time.
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    #[arg(long, default_value_t = 20)]
    limit: i64,
}

#[derive(Args)]
pub struct TrustArgs {
    /// Only this tenant's.
    #[arg(long)]
    tenant: Option<String>,
    /// principal (CloudTrail) or agent (devices).
    #[arg(long, value_parser = ["principal", "agent"])]
    kind: Option<String>,
    /// Only this principal or agent.
    #[arg(long)]
    subject: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: i64,
}

#[derive(Args)]
pub struct SettingsArgs {
    /// Only this tenant's (needed to change a line).
    #[arg(long)]
    tenant: Option<String>,
    /// The line to change: cloudtrail or device.
    #[arg(long, requires = "tenant")]
    scope: Option<String>,
    /// Events scored at least this (above 0.5, below 1) are anomalies.
    #[arg(long, requires = "scope")]
    threshold: Option<f64>,
    /// Seconds for lost trust to come back by half (60 to 2592000).
    #[arg(long, requires = "scope")]
    trust_half_life: Option<u32>,
}

pub async fn anomalies(pool: &PgPool, args: AnomaliesArgs) -> anyhow::Result<()> {
    let q = AnomalyQuery {
        tenants: tenant_scope(args.tenant)?,
        scope: args.scope,
        subject: args.subject,
        since: args.since,
        limit: args.limit.clamp(1, crate::records::MAX_PAGE),
    };
    let rows = list_anomalies(pool, &q).await?;
    if rows.is_empty() {
        println!("no anomalies (none scored at or above its line's threshold)");
    }
    for a in &rows {
        let unusual: Vec<String> = a
            .unusual
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| {
                let share = u["training_share"]
                    .as_f64()
                    .map(|s| format!(", {:.1} % of training", 100.0 * s))
                    .unwrap_or_default();
                format!(
                    "{}={}{share}",
                    u["feature"].as_str().unwrap_or("?"),
                    u["value"]
                )
            })
            .collect();
        println!(
            "{}  {}/{}  {}  {}  score {:.3} (≥ {:.2})  trust {}  {}  unusual: {}  event {}",
            a.event_time.format("%Y-%m-%d %H:%M:%S"),
            a.tenant_id,
            a.scope,
            a.subject,
            a.action,
            a.score,
            a.threshold,
            a.trust,
            a.outcome.as_deref().unwrap_or("-"),
            unusual.join("; "),
            a.event_id
        );
    }
    Ok(())
}

pub async fn trust(pool: &PgPool, args: TrustArgs) -> anyhow::Result<()> {
    let q = TrustQuery {
        tenants: tenant_scope(args.tenant)?,
        subject_kind: args.kind,
        subject: args.subject,
        limit: args.limit.clamp(1, crate::records::MAX_PAGE),
    };
    let rows = list_trust(pool, &q, Utc::now()).await?;
    if rows.is_empty() {
        println!("every principal and agent has full trust (100)");
    }
    for t in &rows {
        println!(
            "{:>3} {:<9}  {}/{} {}  anomalies 24h {}  last counted {} (trust {})",
            t.trust,
            t.level.as_str(),
            t.tenant_id,
            t.subject_kind,
            t.subject,
            t.anomalies_24h,
            t.as_of.format("%Y-%m-%d %H:%M:%S"),
            t.trust_at_last_event
        );
    }
    Ok(())
}

pub async fn settings(pool: &PgPool, args: SettingsArgs, by: &str) -> anyhow::Result<()> {
    if let (Some(tenant), Some(scope)) = (&args.tenant, &args.scope) {
        let tenant = TenantId::parse(tenant)?;
        let scope = ModelScope::parse(scope)?;
        if args.threshold.is_none() && args.trust_half_life.is_none() {
            anyhow::bail!("say what to change: --threshold, --trust-half-life or both");
        }
        let now = line_settings(pool, &tenant, scope).await?;
        let wanted = AnomalySettings::new(
            args.threshold.unwrap_or(now.threshold),
            args.trust_half_life.unwrap_or(now.trust_half_life_secs),
        )?;
        let row = set_line_settings(pool, &tenant, scope, wanted, by)
            .await
            .with_context(|| format!("cannot change {tenant}/{scope}'s settings"))?;
        println!(
            "{}/{}  threshold {}  trust half-life {} s",
            row.tenant_id, row.scope, row.threshold, row.trust_half_life_secs
        );
        return Ok(());
    }
    let rows = list_settings(pool, &tenant_scope(args.tenant)?).await?;
    for s in &rows {
        let changed = match (&s.updated_at, &s.updated_by) {
            (Some(at), Some(by)) => format!("set {} by {by}", at.format("%Y-%m-%d %H:%M:%S")),
            _ => "defaults".to_owned(),
        };
        println!(
            "{}/{}  threshold {}  trust half-life {} s  ({changed})",
            s.tenant_id, s.scope, s.threshold, s.trust_half_life_secs
        );
    }
    Ok(())
}
