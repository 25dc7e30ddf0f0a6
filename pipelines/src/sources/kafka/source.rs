//! The CloudTrail source: a consumer-group member that stores an offset only after every row its
//! message produced is committed (at-least-once transport; idempotent rows make it exactly-once).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use portcullis_engine::Origin;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::client_config;
use crate::config::KafkaConfig;
use crate::path::{Committed, EventPath, Inbound};
use crate::sources::{BatchLimits, InFlight, NotCommitted};
use crate::telemetry::stats::Stats;

/// Why the Kafka source stopped other than by being asked to.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// A batch's task failed (a bug: a panic outside the guards). Nothing of it or after it was
    /// acknowledged, so it is redelivered; the engine stops rather than go on without Kafka.
    #[error("a batch failed ({0}); it was not acknowledged and will be redelivered")]
    BatchFailed(String),
}

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

impl ConsumerContext for LagReporter {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        // Zero partitions is legitimate (more members than partitions) but worth seeing: it is
        // also what a group stuck on a dead member looks like (docs/operations.md).
        let owned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        self.stats
            .metrics
            .kafka_assigned_partitions
            .set(owned as i64);
        info!(partitions = owned, "kafka partitions assigned");
    }
}

pub async fn run_source(
    cfg: KafkaConfig,
    path: Arc<EventPath>,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) -> Result<(), SourceError> {
    let mut client = client_config(&cfg);
    if let Some(instance) = &cfg.instance_id {
        client.set("group.instance.id", instance);
    }
    let consumer: StreamConsumer<LagReporter> = client
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
        // Bounded read-ahead: a slow sink slows consumption instead of growing memory.
        .set(
            "queued.max.messages.kbytes",
            (cfg.prefetch_max_bytes / 1024).max(1).to_string(),
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
    let limits = BatchLimits {
        max_messages: cfg.batch_max_messages,
        max_bytes: cfg.batch_max_bytes,
        linger: Duration::from_millis(cfg.batch_linger_ms),
    };

    // Batches are processed by tasks of their own, up to `max_in_flight_batches` at once, so one
    // batch is judged while the one before it is written. Offsets are stored strictly in batch
    // order: a batch's offsets wait until every earlier batch has committed too.
    let mut in_flight: InFlight<Vec<(String, i32, i64)>> = InFlight::new(cfg.max_in_flight_batches);
    let mut failed = None;
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            m = consumer.recv() => m,
            (offsets, done) = in_flight.oldest() => {
                if !settle(&consumer, &path, &offsets, done, &mut failed) {
                    in_flight.abandon(); // later batches must not store offsets past this one
                    break;
                }
                continue;
            }
        };
        let first = match first {
            Ok(m) => {
                stats.kafka_connected.store(true, Ordering::Relaxed);
                to_inbound(&m)
            }
            Err(e) => {
                stats.kafka_connected.store(false, Ordering::Relaxed);
                warn!(error = %e, "kafka receive error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut more = consumer.stream().map(|m| match m {
            Ok(m) => Some(to_inbound(&m)),
            Err(e) => {
                warn!(error = %e, "kafka receive error");
                None
            }
        });
        let batch = limits.fill(first, |m| m.payload.len(), &mut more).await;
        drop(more);
        // Memory stays bounded: no more than this many batches are held at once.
        if in_flight.is_full() {
            let (offsets, done) = in_flight.oldest().await;
            if !settle(&consumer, &path, &offsets, done, &mut failed) {
                in_flight.abandon();
                break;
            }
        }
        let offsets = last_offsets(&batch);
        in_flight.start(&path, batch, offsets, &cancel);
    }
    // Let batches in hand finish (they give up at their next retry once cancelled); store the
    // offsets of those that committed, in order, up to the first that did not.
    while !in_flight.is_empty() {
        let (offsets, done) = in_flight.oldest().await;
        if !settle(&consumer, &path, &offsets, done, &mut failed) {
            in_flight.abandon();
            break;
        }
    }
    // Commit what was stored; anything after it is redelivered to whoever owns the partition next.
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => {
            warn!(error = %e, "final offset commit failed; uncommitted messages will be redelivered")
        }
    }
    info!("kafka source stopped");
    match failed {
        Some(why) => Err(SourceError::BatchFailed(why)),
        None => Ok(()),
    }
}

/// Acknowledges a finished batch if it committed (its offsets stored), then runs its
/// after-commit steps. False when it did not commit (shutdown, or a bug that failed its task,
/// noted in `failed`): then no later offset may be stored either.
fn settle(
    consumer: &StreamConsumer<LagReporter>,
    path: &EventPath,
    offsets: &[(String, i32, i64)],
    done: Result<Committed, NotCommitted>,
    failed: &mut Option<String>,
) -> bool {
    match done {
        Ok(committed) => {
            store_offsets(consumer, offsets);
            path.after_commit(&committed);
            true
        }
        Err(NotCommitted::Cancelled(_)) => false,
        Err(e @ NotCommitted::Failed(_)) => {
            *failed = Some(e.to_string());
            false
        }
    }
}

fn to_inbound(m: &BorrowedMessage<'_>) -> Inbound {
    Inbound {
        origin: Origin::Kafka {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
        },
        payload: m.payload().unwrap_or_default().to_vec(),
        received: std::time::Instant::now(),
    }
}

/// The last offset of each partition in the batch. Messages of one partition arrive in order,
/// so storing it never skips an unprocessed message.
fn last_offsets(batch: &[Inbound]) -> Vec<(String, i32, i64)> {
    let mut last: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for m in batch {
        if let Origin::Kafka {
            topic,
            partition,
            offset,
        } = &m.origin
        {
            let slot = last.entry((topic, *partition)).or_insert(*offset);
            *slot = (*slot).max(*offset);
        }
    }
    last.into_iter()
        .map(|((t, p), o)| (t.to_owned(), p, o))
        .collect()
}

fn store_offsets(consumer: &StreamConsumer<LagReporter>, offsets: &[(String, i32, i64)]) {
    for (topic, partition, offset) in offsets {
        // rdkafka stores offset + 1: the next message to read.
        if let Err(e) = consumer.store_offset(topic, *partition, *offset) {
            // The partition was revoked meanwhile: its new owner re-reads from the last commit,
            // and our rows are idempotent, so this costs a re-write, not correctness.
            debug!(error = %e, topic, partition, offset, "offset not stored");
        }
    }
}
