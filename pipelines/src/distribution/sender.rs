//! Wakes segment actors to send what was published: at once on each publish (the
//! `segment_versions` trigger's notification), on (re)connecting to Postgres, and in a sweep
//! every `distribution.resend_secs`, which also retries sends that failed (broker away).

use std::sync::Arc;
use std::time::Duration;

use portcullis_actors::{EntityDirectory, Flush, SegmentActor};
use portcullis_engine::distribution::{SegmentId, SegmentKey};
use portcullis_engine::TenantId;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::outbox::PgMqttOutbox;
use super::versions::segments_with_unsent;
use crate::sinks::postgres::notifications::{follow, Notice};

/// The segment actors of a running engine.
pub type SegmentDirectory = EntityDirectory<SegmentActor<PgMqttOutbox>>;

const CHANNEL: &str = "portcullis_segment_versions";

enum Wake {
    One(SegmentKey),
    All,
}

fn parse_key(payload: &str) -> Option<SegmentKey> {
    let (tenant, segment) = payload.split_once('/')?;
    Some(SegmentKey {
        tenant: TenantId::parse(tenant).ok()?,
        segment: SegmentId::parse(segment).ok()?,
    })
}

/// Runs until `cancel` fires.
pub async fn run_sender(
    pool: PgPool,
    segments: Arc<SegmentDirectory>,
    every: Duration,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let (wake, mut woken) = mpsc::unbounded_channel();
    let listener = {
        let (pool, cancel, wake) = (pool.clone(), cancel.clone(), wake.clone());
        tokio::spawn(follow(pool, CHANNEL, cancel, move |notice| {
            let w = match notice {
                // Publishes made while no one listened are found by looking.
                Notice::Connected => Wake::All,
                Notice::Payload(p) => match parse_key(&p) {
                    Some(key) => Wake::One(key),
                    None => Wake::All,
                },
            };
            wake.send(w).is_ok()
        }))
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let w = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => Wake::All,
            w = woken.recv() => match w { Some(w) => w, None => break },
        };
        let keys = match w {
            Wake::One(key) => vec![key],
            Wake::All => match segments_with_unsent(&pool).await {
                Ok(keys) => keys,
                Err(e) => {
                    warn!(error = %e, "cannot look for unsent segment versions; retrying at the next sweep");
                    continue;
                }
            },
        };
        for key in keys {
            // Each segment's actor sends in order; segments go in parallel.
            let segments = segments.clone();
            tokio::spawn(async move {
                match segments.send(&key, Flush).await {
                    Ok(Ok(f)) if !f.sent.is_empty() => {
                        debug!(segment = %key, sent = ?f.sent, "segment versions sent")
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        warn!(segment = %key, error = %e, "segment versions not sent yet; retrying at the next sweep")
                    }
                    Err(e) => warn!(segment = %key, error = %e, "segment actor unavailable"),
                }
            });
        }
    }
    listener.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn notifications_name_a_tenant_and_a_segment() {
        let key = super::parse_key("acme/hr").unwrap();
        assert_eq!(key.to_string(), "acme/hr");
        for bad in ["acme", "acme/HR", "/hr", "acme/hr/x"] {
            assert!(super::parse_key(bad).is_none(), "{bad}");
        }
    }
}
