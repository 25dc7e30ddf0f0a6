//! `portcullis bench`: measured figures, printed (docs/benchmarks.md).

mod copy;
mod pipeline;
mod policy;

pub use pipeline::{bench_url, run_pipeline_bench, BenchOptions, BenchReport};
pub use policy::{run_policy_bench, CaseReport, PolicyBenchOptions, HEADER as POLICY_HEADER};
