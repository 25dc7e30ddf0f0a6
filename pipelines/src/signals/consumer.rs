//! The signals topic: each message one signal, stored before its offset is (so none is lost
//! across a crash; a redelivery replaces the signal with itself). A message that is not a good
//! signal becomes a dead letter with the reason, and is not retried. Engines apply stored
//! signals at their next refresh (`signals.refresh_ms`): no full read per message.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use portcullis_engine::signals::Signal;
use portcullis_engine::{DeadLetter, Origin};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::Message;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::store::{keyed, store_signals};
use super::SignalsConfig;
use crate::config::KafkaConfig;
use crate::retry::Backoff;
use crate::sinks::postgres::{insert_dead_letters, refused_for_content};
use crate::sources::kafka::client_config;
use crate::telemetry::stats::Stats;

pub async fn run_signal_consumer(
    kafka: KafkaConfig,
    config: SignalsConfig,
    pool: PgPool,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) -> Result<(), KafkaError> {
    let group = format!("{}.signals", kafka.group_id);
    let consumer: StreamConsumer = client_config(&kafka)
        .set("group.id", &group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    consumer.subscribe(&[&config.kafka_topic])?;
    info!(topic = %config.kafka_topic, group = %group, "trust signals consumer started");
    loop {
        let message = tokio::select! {
            m = consumer.recv() => m,
            _ = cancel.cancelled() => return Ok(()),
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "trust signals: cannot read from Kafka; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let (topic, partition, offset) = (
            message.topic().to_owned(),
            message.partition(),
            message.offset(),
        );
        let payload = message.payload().unwrap_or_default();
        let origin = Origin::Kafka {
            topic: topic.clone(),
            partition,
            offset,
        };
        let mut backoff = Backoff::for_writes();
        loop {
            let stored = take(&pool, payload, origin.clone()).await;
            match stored {
                Ok(accepted) => {
                    let outcome = if accepted { "accepted" } else { "refused" };
                    stats
                        .metrics
                        .signals
                        .with_label_values(&["kafka", outcome])
                        .inc();
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "trust signals: cannot store; retrying");
                    if backoff.wait(&cancel).await.is_err() {
                        // Not stored, so not acknowledged: redelivered after a restart.
                        return Ok(());
                    }
                }
            }
        }
        if let Err(e) = consumer.store_offset(&topic, partition, offset) {
            warn!(error = %e, "trust signals: cannot store the offset; the signal may come again");
        }
    }
}

/// Stores one message as a signal (`true`) or a dead letter (`false`).
async fn take(pool: &PgPool, payload: &[u8], origin: Origin) -> Result<bool, sqlx::Error> {
    match Signal::parse(payload, Utc::now()) {
        Ok(signal) => {
            let key = keyed(&signal).unwrap_or_else(|| {
                let Origin::Kafka {
                    topic,
                    partition,
                    offset,
                } = &origin
                else {
                    unreachable!("built as Kafka above")
                };
                format!("kafka:{topic}:{partition}:{offset}")
            });
            match store_signals(pool, &[(key, signal)], "kafka").await {
                Ok(_) => Ok(true),
                // Postgres refused this signal's content (a data or constraint error, not a lost
                // connection): retrying would hold up every signal after it, so it is a dead
                // letter like a malformed one.
                Err(e) if refused_for_content(&e) => {
                    dead_letter(pool, payload, origin, format!("cannot store it: {e}")).await?;
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => {
            dead_letter(pool, payload, origin, e.to_string()).await?;
            Ok(false)
        }
    }
}

async fn dead_letter(
    pool: &PgPool,
    payload: &[u8],
    origin: Origin,
    why: String,
) -> Result<(), sqlx::Error> {
    // Which tenant it was meant for, if that much can be read: for the dead letter's tenant
    // filter.
    let hint = serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("tenant_id")?.as_str().map(str::to_owned))
        .filter(|t| portcullis_engine::TenantId::parse(t).is_ok());
    let mut dead = DeadLetter::new(
        origin,
        None,
        payload,
        format!("trust signal refused: {why}"),
    );
    if let Some(t) = hint {
        dead = dead.with_tenant_hint(t);
    }
    let mut conn = pool.acquire().await?;
    insert_dead_letters(&mut conn, &[&dead]).await?;
    Ok(())
}
