//! Portcullis pipelines: the edges around the actors, and the `portcullis` binary.
//!
//! - [`sources`]: Kafka (CloudTrail) and MQTT (agents) in, plus an in-memory source for benchmarks;
//! - [`path`]: the staged event path every message takes: decode → judge → persist → acknowledge
//!   → after-commit steps;
//! - [`sinks`]: Postgres, the system of record;
//! - [`api`]: the HTTP server (decision API, bundle status, decision stream, health, metrics);
//! - [`policy_service`]: bundle files, hot reload, activation records, the decision log and bus;
//! - [`runtime`]: the process (actix system) and `portcullis run`, everything wired together;
//! - [`telemetry`]: logs, traces, metrics; [`tuning`]: opt-in scheduling tuning for dedicated hosts;
//! - [`cli`] and [`tools`] (demo, benchmarks, local services): apart from the runtime.

pub mod access;
pub mod agent;
pub mod anomaly;
pub mod api;
pub mod approvals;
pub mod cli;
pub mod compliance;
pub mod config;
pub mod distribution;
pub mod evidence;
pub mod path;
pub mod policy_service;
pub mod protection;
pub mod records;
pub mod retry;
pub mod runtime;
pub mod secret_file;
pub mod signals;
pub mod sinks;
pub mod sources;
pub mod telemetry;
#[doc(hidden)]
pub mod testing;
pub mod tools;
pub mod tuning;
