//! Opt-in scheduling tuning for hosts given over to the engine, gathered here and off by
//! default (`[tuning]`, docs/operations.md): the time slice HTTP workers ask for, the nice value
//! of the decision log's writer, and a machine-wide CPU latency limit.

pub mod config;
pub mod cpu_latency;
pub mod sched;

use tracing::info;

use config::TuningConfig;
use cpu_latency::{hold_cpu_latency_limit, CpuLatencyError, CpuLatencyLimit};

/// Holds the CPU latency limit `tuning.cpu_latency_qos_us` asks for, if it asks for one, until
/// the returned value drops. A limit that cannot be held is an error: it was asked for.
pub fn hold_configured_cpu_latency(
    tuning: &TuningConfig,
) -> Result<Option<CpuLatencyLimit>, CpuLatencyError> {
    let Some(limit) = tuning.cpu_latency_qos_us else {
        return Ok(None);
    };
    let held = hold_cpu_latency_limit(limit)?;
    info!(
        limit_us = limit,
        "holding idle cores to this wake-up latency (tuning.cpu_latency_qos_us)"
    );
    Ok(Some(held))
}
