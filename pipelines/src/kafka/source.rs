//! The CloudTrail source: a consumer-group member that stores an offset only after every row its
//! message produced is committed (at-least-once transport; idempotent rows make it exactly-once).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use portcullis_engine::Origin;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::statistics::Statistics;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::client_config;
use crate::config::KafkaConfig;
use crate::processor::{Inbound, Processor};
use crate::stats::Stats;

/// Receives librdkafka's periodic statistics and publishes each partition's consumer lag.
struct LagReporter {
    stats: Arc<Stats>,
}

impl ClientContext for LagReporter {
    fn stats(&self, statistics: Statistics) {
        let lag = &self.stats.metrics.kafka_consumer_lag;
        lag.reset(); // partitions revoked since the last report disappear
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // Partition -1 is librdkafka's internal bookkeeping; -1 lag means "not known yet".
                if *partition >= 0 && p.consumer_lag >= 0 {
                    lag.with_label_values(&[topic.as_str(), &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for LagReporter {}

pub async fn run_source(
    cfg: KafkaConfig,
    processor: Arc<Processor>,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) -> Result<(), KafkaError> {
    let consumer: StreamConsumer<LagReporter> = client_config(&cfg)
        .set("group.id", &cfg.group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        // We store offsets ourselves, after the rows are committed.
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // The broker may hold a fetch open this long when no data is waiting; it bounds the
        // latency added at low rates (librdkafka's default, 500 ms, showed up whole in p50).
        .set("fetch.wait.max.ms", "50")
        .set(
            "fetch.max.bytes",
            (cfg.max_message_bytes.max(1 << 20) * 2).to_string(),
        )
        .set(
            "message.max.bytes",
            (cfg.max_message_bytes.max(1 << 20) * 2).to_string(),
        )
        .set(
            "statistics.interval.ms",
            cfg.statistics_interval_ms.to_string(),
        )
        .create_with_context(LagReporter {
            stats: stats.clone(),
        })?;
    consumer.subscribe(&[&cfg.topic])?;
    // Readiness reports whether the brokers answer; partitions may be assigned later, or never
    // (more members than partitions), which is no reason to be unready.
    let metadata = tokio::task::block_in_place(|| {
        consumer.fetch_metadata(Some(&cfg.topic), Duration::from_secs(10))
    });
    match metadata {
        Ok(_) => stats.kafka_connected.store(true, Ordering::Relaxed),
        Err(e) => {
            warn!(error = %e, "kafka brokers did not answer yet; consuming will start when they do")
        }
    }
    info!(topic = %cfg.topic, group = %cfg.group_id, brokers = %cfg.brokers, "kafka source started");
    let linger = Duration::from_millis(cfg.batch_linger_ms);

    'outer: loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            m = consumer.recv() => m,
        };
        let mut batch = Vec::with_capacity(cfg.batch_max_messages);
        match first {
            Ok(m) => {
                stats.kafka_connected.store(true, Ordering::Relaxed);
                batch.push((m.detach(), Instant::now()));
            }
            Err(e) => {
                stats.kafka_connected.store(false, Ordering::Relaxed);
                warn!(error = %e, "kafka receive error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        let deadline = Instant::now() + linger;
        while batch.len() < cfg.batch_max_messages {
            tokio::select! {
                m = consumer.recv() => match m {
                    Ok(m) => batch.push((m.detach(), Instant::now())),
                    Err(e) => { warn!(error = %e, "kafka receive error"); break; }
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let inbound: Vec<Inbound> = batch.iter().map(|(m, at)| to_inbound(m, *at)).collect();
        if processor
            .process_until_committed(&inbound, &cancel)
            .await
            .is_err()
        {
            break 'outer;
        }
        store_offsets(&consumer, batch.iter().map(|(m, _)| m));
    }
    // Commit what was stored; anything after it is redelivered to whoever owns the partition next.
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => {
            warn!(error = %e, "final offset commit failed; uncommitted messages will be redelivered")
        }
    }
    info!("kafka source stopped");
    Ok(())
}

fn to_inbound(m: &OwnedMessage, received: Instant) -> Inbound {
    Inbound {
        origin: Origin::Kafka {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
        },
        payload: m.payload().unwrap_or_default().to_vec(),
        received: received.into_std(),
    }
}

/// Stores, per partition, the offset after the last message of the batch. Messages of one
/// partition arrive in order, so this never skips an unprocessed message.
fn store_offsets<'a>(
    consumer: &StreamConsumer<LagReporter>,
    batch: impl Iterator<Item = &'a OwnedMessage>,
) {
    let mut last: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for m in batch {
        let slot = last.entry((m.topic(), m.partition())).or_insert(m.offset());
        *slot = (*slot).max(m.offset());
    }
    for ((topic, partition), offset) in last {
        // rdkafka stores offset + 1: the next message to read.
        if let Err(e) = consumer.store_offset(topic, partition, offset) {
            // The partition was revoked meanwhile: its new owner re-reads from the last commit,
            // and our rows are idempotent, so this costs a re-write, not correctness.
            debug!(error = %e, topic, partition, offset, "offset not stored");
        }
    }
}
