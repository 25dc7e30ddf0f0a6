//! `portcullis compliance`: packs and violations from the command line (docs/compliance.md).
//! `packs` and `test` read the packs directory; the violation commands talk to Postgres
//! directly, as an administrator, so changes name who made them (`--as`).

use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use portcullis_engine::compliance::{
    CompiledPack, PackManifest, PackRef, StatusChange, ViolationStatus,
};
use portcullis_engine::TenantId;
use uuid::Uuid;

use super::cli_user;
use crate::compliance::{
    self, ChangeError, ReportFormat, RequestError, ResourceQuery, ResourceRow, ScanRow,
    ViolationQuery, ViolationRow,
};
use crate::config::Config;
use crate::policy_service::bundle_files::FsBundleSource;
use crate::policy_service::pack_files::FsPackSource;
use crate::records::TenantScope;
use crate::sinks::postgres;
use portcullis_actors::BundleSource;

#[derive(Subcommand)]
pub enum ComplianceCommand {
    /// The packs installed in policy.packs_dir, with their controls' count and frameworks.
    Packs,
    /// Run packs' own tests (tests.json): each control must fire on its cases, as a change or
    /// as a failed attempt, and stay quiet on its look-alikes. All installed packs, or one.
    /// Exit status 1 when a case fails.
    ///
    ///   portcullis compliance test
    ///   portcullis compliance test cis_aws_monitoring@1.0.0
    #[command(verbatim_doc_comment)]
    Test {
        /// name@version
        pack: Option<String>,
    },
    /// Violations, most recent activity first (active ones by default).
    ///
    ///   portcullis compliance violations --tenant acme
    ///   portcullis compliance violations --status suppressed
    ///   portcullis compliance violations --severity critical --status all
    #[command(verbatim_doc_comment)]
    Violations {
        #[arg(long)]
        tenant: Option<String>,
        /// active (open, acknowledged, remediating), open, acknowledged, remediating,
        /// resolved, suppressed or all.
        #[arg(long, default_value = "active")]
        status: String,
        /// low, medium, high or critical.
        #[arg(long)]
        severity: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One violation: what, where, its evidence events and its history.
    Show { id: Uuid },
    /// The resource inventory: what CloudTrail change events created, modified or deleted, who
    /// last changed it, its active violations, and whether it drifted (changed after it was
    /// last made compliant).
    ///
    ///   portcullis compliance resources --tenant acme --drifted
    #[command(verbatim_doc_comment)]
    Resources {
        #[arg(long)]
        tenant: Option<String>,
        /// Only resources changed after they were last made compliant.
        #[arg(long)]
        drifted: bool,
        /// A type such as AWS::S3::Bucket.
        #[arg(long = "type")]
        resource_type: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Remediation actions: commands sent to executors over Kafka and what they reported.
    Remediations {
        #[arg(long)]
        tenant: Option<String>,
        /// pending, sent, succeeded, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// One violation's actions.
        #[arg(long)]
        violation: Option<Uuid>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Scan a framework for a tenant: each control PASS, FAIL or MUTED from its violations,
    /// the pass rate and the severity-weighted score; stored for the trend. Prints the scan,
    /// or writes it as a report.
    ///
    ///   portcullis compliance scan --tenant acme --framework cis_aws_3.0
    ///   portcullis compliance scan --tenant acme --framework cis_aws_3.0 --format html -o cis.html
    #[command(verbatim_doc_comment)]
    Scan {
        #[arg(long)]
        tenant: String,
        /// A framework the tenant's packs map to (compliance packs lists them).
        #[arg(long)]
        framework: String,
        /// Findings counted from (RFC 3339); default 30 days before --to.
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        /// Findings counted until (RFC 3339); default now.
        #[arg(long)]
        to: Option<DateTime<Utc>>,
        /// text (a summary), json, csv (Prowler's columns), ocsf or html.
        #[arg(long, default_value = "text")]
        format: String,
        /// Write the report here instead of standard output.
        #[arg(short = 'o', long)]
        out: Option<std::path::PathBuf>,
    },
    /// Scans, newest first: the trend of each tenant's frameworks.
    Scans {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        framework: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Ask for a new remediation command for an active violation whose control remediates
    /// automatically or in the maintenance window: after a dry run (once compliance.dry_run
    /// is off), or after an executor failed for a reason since fixed. Refused while one of its
    /// actions still waits for a result. The control is read from the tenant's packs as they
    /// are on disk (policy.packs_dir); the running engine's sender publishes the command.
    ///
    ///   portcullis compliance remediate <id>
    #[command(verbatim_doc_comment)]
    Remediate {
        id: Uuid,
        /// Who asks, as recorded; default cli:$USER.
        #[arg(long = "as", value_name = "NAME")]
        by: Option<String>,
    },
    /// Move a violation through its lifecycle.
    ///
    ///   portcullis compliance set <id> acknowledged --reason "SEC-41"
    ///   portcullis compliance set <id> suppressed --reason "accepted: legacy" --until 2027-03-01T00:00:00Z
    ///   portcullis compliance set <id> resolved
    #[command(verbatim_doc_comment)]
    Set {
        id: Uuid,
        /// open, acknowledged, remediating, resolved or suppressed.
        status: String,
        /// Why, for the record (required to suppress).
        #[arg(long)]
        reason: Option<String>,
        /// When a suppression ends (RFC 3339), at most a year ahead.
        #[arg(long)]
        until: Option<DateTime<Utc>>,
        /// Who makes the change, as recorded; default cli:$USER.
        #[arg(long = "as", value_name = "NAME")]
        by: Option<String>,
    },
}

/// Runs a compliance command. Must be called inside [`crate::runtime::block_on`].
pub async fn run(config: &Config, cmd: ComplianceCommand) -> anyhow::Result<()> {
    let packs = FsPackSource::new(&config.policy.packs_dir);
    match cmd {
        ComplianceCommand::Packs => return list_packs(&packs),
        ComplianceCommand::Test { pack } => return test_packs(&packs, pack.as_deref(), config),
        _ => {}
    }
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot open Postgres")?;
    match cmd {
        ComplianceCommand::Violations {
            tenant,
            status,
            severity,
            limit,
        } => {
            let (status, active_only) = match status.as_str() {
                "all" => (None, false),
                "active" => (None, true),
                s => (
                    Some(ViolationStatus::parse(s).with_context(|| {
                        format!("--status {s:?}: active, open, acknowledged, remediating, resolved, suppressed or all")
                    })?),
                    false,
                ),
            };
            if let Some(s) = severity.as_deref() {
                if !["low", "medium", "high", "critical"].contains(&s) {
                    bail!("--severity {s:?}: low, medium, high or critical");
                }
            }
            let tenants = match tenant {
                Some(t) => TenantScope::Only(vec![TenantId::parse(&t)?]),
                None => TenantScope::All,
            };
            let q = ViolationQuery {
                tenants,
                status,
                active_only,
                severity,
                pack: None,
                control: None,
                resource: None,
                limit: limit.clamp(1, crate::records::MAX_PAGE),
            };
            print_list(&compliance::list(&pool, &q).await?);
        }
        ComplianceCommand::Show { id } => {
            let row = compliance::get(&pool, id)
                .await?
                .with_context(|| format!("no violation {id}"))?;
            let evidence = compliance::evidence(&pool, id, 20).await?;
            let history = compliance::history(&pool, id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "violation": row, "evidence": evidence, "history": history
                }))?
            );
        }
        ComplianceCommand::Resources {
            tenant,
            drifted,
            resource_type,
            limit,
        } => {
            let tenants = match tenant {
                Some(t) => TenantScope::Only(vec![TenantId::parse(&t)?]),
                None => TenantScope::All,
            };
            let q = ResourceQuery {
                tenants,
                resource_type,
                state: None,
                drifted_only: drifted,
                limit: limit.clamp(1, crate::records::MAX_PAGE),
            };
            print_resources(&compliance::resources(&pool, &q).await?);
        }
        ComplianceCommand::Scan {
            tenant,
            framework,
            from,
            to,
            format,
            out,
        } => {
            let report =
                match format.as_str() {
                    "text" => None,
                    f => Some(ReportFormat::parse(f).with_context(|| {
                        format!("--format {f:?}: text, json, csv, ocsf or html")
                    })?),
                };
            let tenant = TenantId::parse(&tenant)?;
            let manifests = tenant_packs(config, &packs, &tenant)?;
            let to = to.unwrap_or_else(Utc::now);
            let from = from.unwrap_or(to - chrono::Duration::days(30));
            let by = cli_user();
            let scan =
                compliance::run_scan(&pool, &tenant, &manifests, &framework, (from, to), &by)
                    .await
                    .map_err(|e| match e {
                        compliance::ScanError::Db(e) => {
                            anyhow::Error::new(e).context("cannot scan in Postgres")
                        }
                        other => anyhow::anyhow!(other),
                    })?;
            match (report, out) {
                (None, _) => print_scan(&scan),
                (Some(f), Some(path)) => {
                    std::fs::write(&path, compliance::render(&scan, f))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("scan {} written to {}", scan.scan_id, path.display());
                }
                (Some(f), None) => {
                    use std::io::Write;
                    std::io::stdout().write_all(&compliance::render(&scan, f))?;
                }
            }
        }
        ComplianceCommand::Scans {
            tenant,
            framework,
            limit,
        } => {
            let tenants = match tenant {
                Some(t) => TenantScope::Only(vec![TenantId::parse(&t)?]),
                None => TenantScope::All,
            };
            let rows = compliance::scans(
                &pool,
                &tenants,
                framework.as_deref(),
                limit.clamp(1, crate::records::MAX_PAGE),
            )
            .await?;
            if rows.is_empty() {
                println!("no scans");
            }
            for r in rows {
                println!(
                    "{}  {}  {:<10}  {:<24}  pass rate {:>6}  score {:>6}  {} passed, {} failed, {} muted",
                    r.scanned_at.format("%Y-%m-%d %H:%M:%S"),
                    r.scan_id,
                    r.tenant_id,
                    r.framework,
                    percent(r.pass_rate),
                    percent(r.score),
                    r.passed,
                    r.failed,
                    r.muted
                );
            }
        }
        ComplianceCommand::Remediations {
            tenant,
            status,
            violation,
            limit,
        } => {
            let tenants = match tenant {
                Some(t) => TenantScope::Only(vec![TenantId::parse(&t)?]),
                None => TenantScope::All,
            };
            if let Some(s) = status.as_deref() {
                if !["pending", "sent", "succeeded", "failed", "cancelled"].contains(&s) {
                    bail!("--status {s:?}: pending, sent, succeeded, failed or cancelled");
                }
            }
            let rows = compliance::remediations(
                &pool,
                &tenants,
                status.as_deref(),
                violation,
                limit.clamp(1, crate::records::MAX_PAGE),
            )
            .await?;
            if rows.is_empty() {
                println!("no remediation actions");
            }
            for r in rows {
                println!(
                    "{}  {:<10}  {:<9}  {:<9}  {}  {} on {}{}",
                    r.remediation_id,
                    r.tenant_id,
                    r.status,
                    r.strategy,
                    r.action,
                    r.control_id,
                    r.resource_id,
                    match r.dry_run {
                        Some(true) => " (dry run)",
                        _ => "",
                    }
                );
            }
        }
        ComplianceCommand::Set {
            id,
            status,
            reason,
            until,
            by,
        } => {
            let to = ViolationStatus::parse(&status).with_context(|| {
                format!("{status:?}: open, acknowledged, remediating, resolved or suppressed")
            })?;
            let by = by.unwrap_or_else(cli_user);
            let reason = reason.filter(|r| !r.trim().is_empty());
            if reason.as_deref().is_some_and(|r| r.contains('\0')) {
                bail!("a reason cannot contain NUL");
            }
            let change = StatusChange { to, reason, until };
            let row = compliance::change_status(&pool, id, &change, &by, |_| true)
                .await
                .map_err(|e| match e {
                    ChangeError::Db(e) => {
                        anyhow::Error::new(e).context("cannot change it in Postgres")
                    }
                    other => anyhow::anyhow!(other),
                })?;
            println!(
                "violation {} ({} on {}) is {} now",
                row.violation_id, row.control_id, row.resource_id, row.status
            );
        }
        ComplianceCommand::Remediate { id, by } => {
            let violation = compliance::get(&pool, id)
                .await
                .context("cannot read it from Postgres")?
                .with_context(|| format!("no violation {id}"))?;
            let tenant = TenantId::parse(&violation.tenant_id)?;
            let manifests = tenant_packs(config, &packs, &tenant)?;
            let by = by.unwrap_or_else(cli_user);
            let action = compliance::request_remediation(&pool, id, &manifests, &by, |_| true)
                .await
                .map_err(|e| match e {
                    RequestError::Db(e) => {
                        anyhow::Error::new(e).context("cannot ask for it in Postgres")
                    }
                    other => anyhow::anyhow!(other),
                })?;
            println!(
                "remediation {} asked: {} ({}) for {} on {}; the engine's sender publishes it{}",
                action.remediation_id,
                action.action,
                action.strategy,
                action.control_id,
                action.resource_id,
                if action.strategy == "scheduled" {
                    " in the next maintenance window"
                } else {
                    ""
                }
            );
        }
        ComplianceCommand::Packs | ComplianceCommand::Test { .. } => unreachable!(),
    }
    pool.close().await;
    Ok(())
}

/// The pack manifests `tenant`'s bundle enables, as they are on disk now.
fn tenant_packs(
    config: &Config,
    packs: &FsPackSource,
    tenant: &TenantId,
) -> anyhow::Result<Vec<PackManifest>> {
    let bundle = FsBundleSource::new(&config.policy.bundles_dir)
        .with_packs(packs.clone())
        .load(tenant)
        .with_context(|| format!("cannot read tenant {tenant}'s bundle"))?;
    Ok(bundle.packs.into_iter().map(|p| p.manifest).collect())
}

fn list_packs(packs: &FsPackSource) -> anyhow::Result<()> {
    let refs = packs
        .list()
        .with_context(|| format!("cannot read {}", packs.dir().display()))?;
    if refs.is_empty() {
        println!("no packs in {}", packs.dir().display());
        return Ok(());
    }
    println!(
        "{:<34}  {:>8}  {:<44}  FRAMEWORKS",
        "PACK", "CONTROLS", "TITLE"
    );
    for r in refs {
        match packs.load(&r) {
            Ok(p) => {
                let frameworks: Vec<&str> = p
                    .manifest
                    .frameworks
                    .iter()
                    .map(|f| f.id.as_str())
                    .collect();
                println!(
                    "{:<34}  {:>8}  {:<44}  {}",
                    r.to_string(),
                    p.manifest.controls.len(),
                    p.manifest.title,
                    frameworks.join(", ")
                );
            }
            Err(e) => println!("{:<34}  refused: {e}", r.to_string()),
        }
    }
    Ok(())
}

fn test_packs(packs: &FsPackSource, only: Option<&str>, config: &Config) -> anyhow::Result<()> {
    let refs = match only {
        Some(spec) => {
            let (name, version) = spec
                .split_once('@')
                .with_context(|| format!("{spec:?}: name a pack as name@version"))?;
            vec![PackRef::new(name, version)?]
        }
        None => packs
            .list()
            .with_context(|| format!("cannot read {}", packs.dir().display()))?,
    };
    let timeout = Duration::from_millis(config.policy.eval_timeout_ms);
    let mut failed = 0usize;
    for r in &refs {
        let source = packs.load(r)?;
        let mut compiled = CompiledPack::compile(&source, timeout)
            .with_context(|| format!("pack {r} does not compile"))?;
        let cases = packs.load_tests(r)?;
        let failures = compiled
            .run_tests(&cases)
            .with_context(|| format!("pack {r}"))?;
        println!(
            "{r}: {} controls, {} cases, {} failed ({})",
            source.manifest.controls.len(),
            cases.len(),
            failures.len(),
            compiled.evaluator()
        );
        for f in &failures {
            println!(
                "  FAIL {} {:?}: expected {:?}, got {}",
                f.control, f.name, f.expected, f.got
            );
        }
        failed += failures.len();
    }
    if failed > 0 {
        bail!("{failed} case(s) failed");
    }
    Ok(())
}

fn print_list(rows: &[ViolationRow]) {
    if rows.is_empty() {
        println!("no violations");
        return;
    }
    println!(
        "{:<36}  {:<10}  {:<12}  {:<8}  {:<19}  {:>5}  CONTROL ON RESOURCE",
        "ID", "TENANT", "STATUS", "SEVERITY", "LAST SEEN", "SEEN"
    );
    for r in rows {
        println!(
            "{:<36}  {:<10}  {:<12}  {:<8}  {:<19}  {:>5}  {} {} ({}) on {}",
            r.violation_id,
            r.tenant_id,
            r.status,
            r.severity,
            r.last_seen.format("%Y-%m-%d %H:%M:%S"),
            r.occurrences,
            r.pack,
            r.control_id,
            r.title,
            r.resource_id
        );
    }
}

fn print_resources(rows: &[ResourceRow]) {
    if rows.is_empty() {
        println!("no resources (the inventory is kept for tenants that enable packs)");
        return;
    }
    println!(
        "{:<10}  {:<34}  {:<30}  {:<8}  {:<19}  {:<24}  {:>10}  DRIFTED",
        "TENANT", "TYPE", "ID", "STATE", "LAST CHANGE", "BY", "VIOLATIONS"
    );
    for r in rows {
        println!(
            "{:<10}  {:<34}  {:<30}  {:<8}  {:<19}  {:<24}  {:>10}  {}",
            r.tenant_id,
            r.resource_type,
            r.resource_id,
            r.state,
            r.last_changed_at.format("%Y-%m-%d %H:%M:%S"),
            r.last_changed_by,
            r.active_violations,
            if r.drifted { "yes" } else { "" }
        );
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1}%"))
}

fn print_scan(scan: &ScanRow) {
    println!(
        "{} for {}: pass rate {}, severity-weighted score {} ({} passed, {} failed, {} muted); scan {}",
        scan.framework_title,
        scan.tenant_id,
        percent(scan.pass_rate),
        percent(scan.score),
        scan.passed,
        scan.failed,
        scan.muted,
        scan.scan_id
    );
    for c in &scan.controls.0 {
        println!(
            "  {:<5}  {:<10}  {:<8}  {}{}",
            c.status.as_str(),
            c.requirement,
            c.severity.as_str(),
            c.title,
            match c.failing_resources {
                0 => String::new(),
                n => format!(" ({n} resource(s))"),
            }
        );
    }
}
