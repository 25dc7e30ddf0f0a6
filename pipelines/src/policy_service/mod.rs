//! The policy service around the tenant actors: recording bundle activations, watching bundles
//! for hot reload, and logging the decision API's decisions.

pub mod bundle_files;
pub mod config;
mod decision_bus;
mod decision_log;
mod observer;
pub mod pack_files;
mod watch;

pub use decision_bus::{DecisionBus, StreamedDecision};
pub use decision_log::{
    start_decision_log, DecisionLog, DecisionLogFull, DecisionLogWriter, WRITER_THREAD,
};
pub use observer::{record_activations, ActivationRecorder};
pub use watch::{activate_all, watch_bundles, watch_packs};

/// This engine process, as recorded with each activation: `host:pid`.
pub fn engine_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{host}:{}", std::process::id())
}
