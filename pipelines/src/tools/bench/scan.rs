//! `portcullis bench scan`: a compliance scan of a tenant with a million stored findings,
//! against reading the same rows with one aggregate and nothing else, in one run.
//!
//! A scan reads violations and the findings of its period, never the events table: each
//! finding stands for one stored event a control fired on. The rows are generated in
//! Postgres (violations over `--resources` resources of the CIS pack's controls, a tenth of
//! them resolved and a tenth suppressed; findings spread over 30 days), in `{database}_bench`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use portcullis_engine::compliance::PackRef;
use portcullis_engine::TenantId;

use super::pipeline::bench_url;
use crate::compliance::run_scan;
use crate::config::Config;
use crate::policy_service::pack_files::FsPackSource;
use crate::sinks::postgres;

#[derive(Debug, Clone)]
pub struct ScanBenchOptions {
    pub findings: u64,
    pub resources: u64,
    pub rounds: usize,
}

#[derive(Debug, Clone)]
pub struct ScanBenchReport {
    pub findings: u64,
    pub violations: u64,
    /// Median of the rounds.
    pub ceiling: Duration,
    pub scan: Duration,
    pub failed_controls: i32,
}

const TENANT: &str = "benchscan";

pub async fn run_scan_bench(
    config: &Config,
    opts: &ScanBenchOptions,
) -> anyhow::Result<ScanBenchReport> {
    let mut cfg = config.clone();
    cfg.postgres.url = bench_url(&config.postgres.url);
    let pool = postgres::migrate(&cfg.postgres)
        .await
        .context("cannot prepare the bench database")?;
    let tenant = TenantId::parse(TENANT)?;
    let pack = FsPackSource::new(&config.policy.packs_dir)
        .load(&PackRef::new("cis_aws_monitoring", "1.0.0")?)
        .with_context(|| {
            format!(
                "the CIS pack in {}",
                Path::new(&config.policy.packs_dir).display()
            )
        })?;
    let controls = pack.manifest.controls.len() as i64;
    let violations = opts.resources as i64 * controls;

    eprintln!(
        "generating {violations} violations and {} findings…",
        opts.findings
    );
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM compliance_scans WHERE tenant_id = $1")
        .bind(TENANT)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM compliance_findings WHERE tenant_id = $1")
        .bind(TENANT)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM compliance_violation_history h USING compliance_violations v
         WHERE h.violation_id = v.violation_id AND v.tenant_id = $1",
    )
    .bind(TENANT)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM remediation_actions WHERE tenant_id = $1")
        .bind(TENANT)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM compliance_violations WHERE tenant_id = $1")
        .bind(TENANT)
        .execute(&mut *tx)
        .await?;
    // Violation i: control i % controls, resource i / controls.
    sqlx::query(
        "INSERT INTO compliance_violations
             (violation_id, tenant_id, pack, control_id, resource_type, resource_id, pack_version,
              title, severity, status, first_seen, last_seen, occurrences, resolved_at,
              suppressed_until)
         SELECT md5($1 || i)::uuid, $1, 'cis_aws_monitoring', '4.' || (1 + i % $2),
                'AWS::S3::Bucket', 'bucket-' || (i / $2), '1.0.0', 'bench', 'medium',
                CASE i % 10 WHEN 0 THEN 'resolved' WHEN 1 THEN 'suppressed' ELSE 'open' END,
                now() - interval '30 days', now(), 1,
                CASE WHEN i % 10 = 0 THEN now() END,
                CASE WHEN i % 10 = 1 THEN now() + interval '7 days' END
         FROM generate_series(0, $3 - 1) i",
    )
    .bind(TENANT)
    .bind(controls)
    .bind(violations)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO compliance_findings
             (tenant_id, decision_id, pack, control_id, pack_version, event_id, event_time,
              severity, resource_type, resource_id, principal, action, succeeded, violates,
              violation_id)
         SELECT $1, md5('d' || j)::uuid, 'cis_aws_monitoring', '4.' || (1 + v % $2), '1.0.0',
                'e-' || j, now() - (j % 2592000) * interval '1 second', 'medium',
                'AWS::S3::Bucket', 'bucket-' || (v / $2), 'alice', 'PutBucketPolicy', true, true,
                md5($1 || v)::uuid
         FROM generate_series(0, $4 - 1) j, LATERAL (SELECT j % $3 AS v) x",
    )
    .bind(TENANT)
    .bind(controls)
    .bind(violations)
    .bind(opts.findings as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE compliance_findings, compliance_violations")
        .execute(&pool)
        .await?;

    let to = Utc::now() + chrono::Duration::minutes(1);
    let from = to - chrono::Duration::days(31);
    let mut ceilings = Vec::new();
    let mut scans = Vec::new();
    let mut failed = 0;
    for round in 0..opts.rounds {
        eprintln!("round {}: ceiling, then the scan…", round + 1);
        let started = Instant::now();
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM compliance_findings f JOIN compliance_violations v
               ON v.violation_id = f.violation_id
             WHERE v.tenant_id = $1 AND f.event_time BETWEEN $2 AND $3",
        )
        .bind(TENANT)
        .bind(from)
        .bind(to)
        .fetch_one(&pool)
        .await?;
        ceilings.push(started.elapsed());
        anyhow::ensure!(n as u64 == opts.findings, "the ceiling read {n} findings");
        let started = Instant::now();
        let scan = run_scan(
            &pool,
            &tenant,
            std::slice::from_ref(&pack.manifest),
            "cis_aws_3.0",
            (from, to),
            "bench",
        )
        .await?;
        scans.push(started.elapsed());
        let counted: i64 = scan.controls.0.iter().map(|c| c.findings_in_period).sum();
        anyhow::ensure!(
            counted as u64 == opts.findings,
            "the scan counted {counted} findings, expected {}",
            opts.findings
        );
        failed = scan.failed;
    }
    pool.close().await;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    Ok(ScanBenchReport {
        findings: opts.findings,
        violations: violations as u64,
        ceiling: median(ceilings),
        scan: median(scans),
        failed_controls: failed,
    })
}
