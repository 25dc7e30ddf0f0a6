//! `portcullis bench`: measured figures, printed (docs/benchmarks.md).

mod copy;
mod engine;
mod pipeline;
mod policy;

pub use engine::{run_engine_bench, EngineBenchOptions, EngineBenchReport, Phase};
pub use pipeline::{bench_url, run_pipeline_bench, BenchOptions, BenchReport};
pub use policy::{run_policy_bench, CaseReport, PolicyBenchOptions, HEADER as POLICY_HEADER};
