//! Wakes segment actors to send what was published: at once on each publish (the
//! `segment_versions` trigger's notification), on (re)connecting to Postgres, and in a sweep
//! every `distribution.resend_secs`, which also retries sends that failed (broker away).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_actors::{EntityDirectory, Flush, SegmentActor};
use portcullis_engine::distribution::{SegmentId, SegmentKey};
use portcullis_engine::TenantId;
use sqlx::PgPool;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::outbox::PgMqttOutbox;
use super::versions::segments_with_unsent;
use crate::sinks::postgres::notifications::{follow, Notice};

/// The segment actors of a running engine.
pub type SegmentDirectory = EntityDirectory<SegmentActor<PgMqttOutbox>>;

const CHANNEL: &str = "portcullis_segment_versions";
/// Segments flushed at once; each holds a pooled Postgres connection while it sends.
const MAX_CONCURRENT_FLUSHES: usize = 2;

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
    // Segments being flushed; `true`: woken again meanwhile, flush once more.
    let in_flight: Arc<Mutex<HashMap<SegmentKey, bool>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_FLUSHES));
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
            // One flush per segment in flight (the sweep must not pile them up while a send
            // waits on the broker), and few at once (each holds a pooled connection). A wake
            // for a segment being flushed makes it flush once more afterwards.
            {
                let mut flights = in_flight.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(again) = flights.get_mut(&key) {
                    *again = true;
                    continue;
                }
                flights.insert(key.clone(), false);
            }
            let (segments, in_flight, permits) =
                (segments.clone(), in_flight.clone(), permits.clone());
            tokio::spawn(async move {
                loop {
                    let outcome = match permits.clone().acquire_owned().await {
                        Ok(_permit) => segments.send(&key, Flush).await,
                        Err(_) => return,
                    };
                    match outcome {
                        Ok(Ok(f)) if !f.sent.is_empty() => {
                            debug!(segment = %key, sent = ?f.sent, "segment versions sent")
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            warn!(segment = %key, error = %e, "segment versions not sent yet; retrying at the next sweep")
                        }
                        Err(e) => warn!(segment = %key, error = %e, "segment actor unavailable"),
                    }
                    let mut flights = in_flight.lock().unwrap_or_else(|e| e.into_inner());
                    match flights.get_mut(&key) {
                        Some(again) if *again => *again = false,
                        _ => {
                            flights.remove(&key);
                            return;
                        }
                    }
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
