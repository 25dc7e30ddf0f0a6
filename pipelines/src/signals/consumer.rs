//! The signals topic: each message one signal, stored before its offset is (so none is lost
//! across a crash; a redelivery replaces the signal with itself). A message that is not a good
//! signal becomes a dead letter with the reason, and is not retried. Engines apply stored
//! signals at their next refresh (`signals.refresh_ms`): no full read per message.

use std::sync::Arc;

use chrono::Utc;

use portcullis_engine::signals::Signal;
use portcullis_engine::{DeadLetter, Origin};
use rdkafka::error::KafkaError;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::store::{keyed, store_signals};
use super::SignalsConfig;
use crate::config::KafkaConfig;
use crate::sinks::postgres::{insert_dead_letters, refused_for_content};
use crate::sources::kafka::consume_each;
use crate::telemetry::stats::Stats;

pub async fn run_signal_consumer(
    kafka: KafkaConfig,
    config: SignalsConfig,
    pool: PgPool,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) -> Result<(), KafkaError> {
    consume_each(
        &kafka,
        "signals",
        &config.kafka_topic,
        "trust signals",
        cancel,
        |payload, origin| {
            let (pool, stats) = (pool.clone(), stats.clone());
            async move {
                let accepted = take(&pool, &payload, origin).await?;
                let outcome = if accepted { "accepted" } else { "refused" };
                stats
                    .metrics
                    .signals
                    .with_label_values(&["kafka", outcome])
                    .inc();
                Ok(())
            }
        },
    )
    .await
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
