//! Producing many messages with many in flight (demo, benchmark, tests).

use std::time::Duration;

use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::client_config;
use crate::config::KafkaConfig;

pub fn producer(cfg: &KafkaConfig) -> Result<FutureProducer, KafkaError> {
    client_config(cfg)
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("message.max.bytes", "10000000")
        .create()
}

/// Sends every `(key, payload)` to `topic` and returns once all are acknowledged.
pub async fn produce_all(
    producer: &FutureProducer,
    topic: &str,
    messages: &[(String, Vec<u8>)],
) -> Result<(), KafkaError> {
    for chunk in messages.chunks(5000) {
        let sends = chunk.iter().map(|(key, payload)| {
            producer.send(
                FutureRecord::to(topic).key(key).payload(payload),
                Duration::from_secs(30),
            )
        });
        for r in join_all(sends).await {
            r.map_err(|(e, _)| e)?;
        }
    }
    Ok(())
}
