//! The segment actors' outbox: versions read and recorded in Postgres under a per-segment
//! advisory lock held for the whole flush (so two engines never interleave one segment's
//! versions), and published to the segment's MQTT topic (QoS 1, retained).

use portcullis_actors::{Claimed, OutboxError, OutgoingVersion, SegmentOutbox};
use portcullis_engine::distribution::{segment_policy_topic, SegmentKey};
use sqlx::{PgPool, Postgres, Transaction};

use super::versions::{mark_sent_in, sent_through, unsent_versions_in};
use crate::sinks::mqtt::MqttPublisher;

pub struct PgMqttOutbox {
    pool: PgPool,
    publisher: MqttPublisher,
    /// `mqtt.topic_prefix`.
    prefix: String,
}

impl PgMqttOutbox {
    pub fn new(pool: PgPool, publisher: MqttPublisher, prefix: String) -> Self {
        Self {
            pool,
            publisher,
            prefix,
        }
    }
}

fn store(e: sqlx::Error) -> OutboxError {
    OutboxError::Store(e.to_string())
}

impl SegmentOutbox for PgMqttOutbox {
    /// The transaction holding the segment's advisory lock (released at its end).
    type Claim = Transaction<'static, Postgres>;

    fn sent_through(
        &self,
        key: SegmentKey,
    ) -> impl std::future::Future<Output = Result<u64, OutboxError>> + Send + 'static {
        let pool = self.pool.clone();
        async move { sent_through(&pool, &key).await.map_err(store) }
    }

    fn claim(
        &self,
        key: SegmentKey,
    ) -> impl std::future::Future<Output = Result<Claimed<Self::Claim>, OutboxError>> + Send + 'static
    {
        let pool = self.pool.clone();
        // Not while the broker is away: the claim would hold a pooled connection for nothing.
        let broker_up = self.publisher.is_connected();
        async move {
            if !broker_up {
                return Err(OutboxError::Send(
                    "the broker is not connected; retrying at the next sweep".into(),
                ));
            }
            let mut tx = pool.begin().await.map_err(store)?;
            // Not a row lock: publishing (which locks the segment's row) is never held up by
            // a send in progress. A hash collision only makes an engine skip until the sweep.
            let held: bool = sqlx::query_scalar(
                "SELECT pg_try_advisory_xact_lock(hashtextextended('portcullis.segment:' || $1, 0))",
            )
            .bind(key.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(store)?;
            if !held {
                return Ok(None);
            }
            let versions = unsent_versions_in(&mut tx, &key).await.map_err(store)?;
            let outgoing = versions
                .into_iter()
                .map(|v| {
                    Ok(OutgoingVersion {
                        version: v.version,
                        envelope: serde_json::to_vec(&v.envelope)
                            .map_err(|e| OutboxError::Store(e.to_string()))?,
                    })
                })
                .collect::<Result<Vec<_>, OutboxError>>()?;
            Ok(Some((tx, outgoing)))
        }
    }

    fn send(
        &self,
        key: SegmentKey,
        version: OutgoingVersion,
    ) -> impl std::future::Future<Output = Result<(), OutboxError>> + Send + 'static {
        let publisher = self.publisher.clone();
        let topic = segment_policy_topic(&self.prefix, &key);
        async move {
            publisher
                .publish(topic, version.envelope, true)
                .await
                .map_err(|e| OutboxError::Send(e.to_string()))
        }
    }

    // Not `async fn`: the future must not borrow `self` (it runs inside the actor, 'static).
    #[allow(clippy::manual_async_fn)]
    fn release(
        &self,
        mut claim: Self::Claim,
        key: SegmentKey,
        sent: Vec<u64>,
    ) -> impl std::future::Future<Output = Result<(), OutboxError>> + Send + 'static {
        async move {
            for version in sent {
                mark_sent_in(&mut claim, &key, version)
                    .await
                    .map_err(store)?;
            }
            claim.commit().await.map_err(store)
        }
    }
}
