//! The integration tests of `portcullis` against the real services, as one test binary.
//!
//! One binary rather than one per file: each test binary links the whole engine, and twenty of
//! them cost minutes of linking and gigabytes of disk on every fresh build. nextest still runs
//! each test in its own process; `.config/nextest.toml` groups them by module (`faults::`, …).

mod common;

mod access;
mod agent;
mod agents;
mod anomaly_findings;
mod anomaly_path;
mod approvals;
mod backpressure;
mod bench;
mod cli;
mod compliance;
mod console;
mod demo;
mod distribution;
mod distribution_store;
mod dlq;
mod enrollment;
mod evidence;
mod faults;
mod gateway;
mod http;
mod model;
mod pipeline;
mod policies;
mod policy_api;
mod protection;
mod read_api;
mod registry;
mod signals;
mod training;
mod writer;
