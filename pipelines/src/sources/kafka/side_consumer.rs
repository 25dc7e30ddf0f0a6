//! A side topic read one message at a time (trust signals, remediation results): each is
//! handled, its effects stored, before its offset is, so none is lost across a crash and a
//! redelivery meets what the first delivery stored. A handler's error (Postgres away) is retried
//! with backoff, holding the partition; the message is never skipped.

use std::future::Future;
use std::time::Duration;

use portcullis_engine::Origin;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::Message;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::client_config;
use crate::config::KafkaConfig;
use crate::retry::Backoff;

/// Reads `topic` in the consumer group `{kafka.group_id}.{group}` until `cancel`, calling
/// `handle(payload, origin)` for each message; `what` names the stream in logs.
pub async fn consume_each<F, Fut>(
    kafka: &KafkaConfig,
    group: &str,
    topic: &str,
    what: &'static str,
    cancel: CancellationToken,
    mut handle: F,
) -> Result<(), KafkaError>
where
    F: FnMut(Vec<u8>, Origin) -> Fut,
    Fut: Future<Output = Result<(), sqlx::Error>>,
{
    let group = format!("{}.{group}", kafka.group_id);
    let consumer: StreamConsumer = client_config(kafka)
        .set("group.id", &group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    consumer.subscribe(&[topic])?;
    info!(topic, group = %group, "{what} consumer started");
    loop {
        let message = tokio::select! {
            m = consumer.recv() => m,
            _ = cancel.cancelled() => return Ok(()),
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "{what}: cannot read from Kafka; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let (topic, partition, offset) = (
            message.topic().to_owned(),
            message.partition(),
            message.offset(),
        );
        let payload = message.payload().unwrap_or_default().to_vec();
        let origin = Origin::Kafka {
            topic: topic.clone(),
            partition,
            offset,
        };
        let mut backoff = Backoff::for_writes();
        while let Err(e) = handle(payload.clone(), origin.clone()).await {
            warn!(error = %e, "{what}: cannot store; retrying");
            if backoff.wait(&cancel).await.is_err() {
                // Not stored, so not acknowledged: redelivered after a restart.
                return Ok(());
            }
        }
        if let Err(e) = consumer.store_offset(&topic, partition, offset) {
            warn!(error = %e, "{what}: cannot store the offset; the message may come again");
        }
    }
}
