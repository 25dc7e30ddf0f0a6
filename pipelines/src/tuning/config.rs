//! `[tuning]`: scheduling tuning for hosts given over to the engine. Every setting is off by
//! default: each changes how the kernel treats the engine's threads or the whole machine, which
//! a shared host should not have done to it unasked (docs/operations.md, "Tuning").

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuningConfig {
    /// Time slice HTTP workers ask the kernel for, in µs (Linux 6.12+, clamped to 100–100,000):
    /// a woken worker then waits at most about this long for a core held by other work. 0
    /// (default) keeps the kernel's.
    pub http_worker_time_slice_us: u64,
    /// When set, idle cores are held to this wake-up latency in µs while the engine runs (0:
    /// they poll rather than halt). Cuts the decision API's tail on machines whose idle cores
    /// are slow to wake, virtual machines above all, at the cost of cores that never rest; it
    /// applies to the whole machine and needs write access to /dev/cpu_dma_latency (root).
    pub cpu_latency_qos_us: Option<u32>,
    /// Raised nice value of the decision log's writer thread (0–19), so that an HTTP worker
    /// woken to answer takes its core at once. 0 (default) leaves it as the engine's.
    pub decision_log_nice: u8,
}
