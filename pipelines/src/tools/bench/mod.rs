//! `portcullis bench`: measured figures, printed (docs/benchmarks.md).

mod clear;
mod copy;
mod engine;
mod evidence;
mod fanout;
mod forest;
mod in_process;
mod pipeline;
mod policy;
mod scan;
mod sessions;

pub use clear::clear_path_rows;
pub use engine::{run_engine_bench, EngineBenchOptions, EngineBenchReport, Phase};
pub use evidence::{run_evidence_bench, EvidenceBenchOptions, EvidenceBenchReport};
pub use fanout::{run_fanout_bench, FanoutOptions, FanoutReport, Spread};
pub use forest::{run_forest_bench, ForestBenchOptions, ForestBenchReport};
pub use pipeline::{bench_url, run_pipeline_bench, BenchOptions, BenchReport};
pub use policy::{run_policy_bench, CaseReport, PolicyBenchOptions, HEADER as POLICY_HEADER};
pub use scan::{run_scan_bench, ScanBenchOptions, ScanBenchReport};
pub use sessions::{run_sessions_bench, SessionsOptions, SessionsReport};

/// A benchmark whose records became dead letters measured something else: it says so, with the
/// first reason, instead of printing figures.
async fn no_dead_letters(
    pool: &sqlx::PgPool,
    stats: &crate::telemetry::stats::Stats,
) -> anyhow::Result<()> {
    if stats.dead_letters() == 0 {
        return Ok(());
    }
    let reason: Option<String> =
        sqlx::query_scalar("SELECT reason FROM dead_letters ORDER BY failed_at LIMIT 1")
            .fetch_optional(pool)
            .await?;
    anyhow::bail!(
        "{} records became dead letters, so the figures would mean nothing; the first says: {}",
        stats.dead_letters(),
        reason.unwrap_or_default()
    )
}
