//! Kafka: the CloudTrail source, side topics read one message at a time, topic administration,
//! and a producer for `demo` and tests.

mod admin;
pub mod config;
mod producer;
mod side_consumer;
mod source;

pub use admin::ensure_topic;
pub use producer::{produce_all, producer};
pub use side_consumer::consume_each;
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
