//! Kafka: the CloudTrail source, topic administration, and a producer for `demo` and tests.

mod admin;
pub mod config;
mod producer;
mod source;

pub use admin::ensure_topic;
pub use producer::{produce_all, producer};
pub use source::{run_source, SourceError};

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

/// Settings shared by every client we create.
pub fn client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("client.id", "portcullis");
    c
}
