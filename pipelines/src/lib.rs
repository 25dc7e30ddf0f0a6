//! Portcullis pipelines: the edges (Kafka, MQTT, Postgres, files) and the `portcullis` binary.

pub mod bench;
pub mod bundles;
pub mod config;
pub mod cpu_latency;
pub mod demo;
pub mod dlq;
pub mod engine;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod mqtt;
pub mod policy_service;
pub mod postgres;
pub mod processor;
pub mod runtime;
pub mod sched;
pub mod services;
pub mod stats;
pub mod telemetry;
