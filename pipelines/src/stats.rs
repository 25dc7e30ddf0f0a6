//! What the engine knows about itself: counters read by `demo` and tests, health flags read by
//! `/readyz`, and the Prometheus metrics served at `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::metrics::Metrics;

#[derive(Debug)]
pub struct Stats {
    /// Source messages acknowledged after their rows were committed.
    pub messages_committed: AtomicU64,
    /// Records fully handled (an event with its decision, or a dead letter), committed.
    pub records_committed: AtomicU64,
    pub events_written: AtomicU64,
    pub decisions_allow: AtomicU64,
    pub decisions_deny: AtomicU64,
    pub dead_letters: AtomicU64,
    /// Batches that had to be retried (Postgres unavailable, tenant actor restarting, ...).
    pub retries: AtomicU64,
    /// The MQTT source holds its subscription (false while disconnected).
    pub mqtt_subscribed: AtomicBool,
    /// False from a failed write until the next successful one (what `/readyz` will report).
    pub postgres_ok: AtomicBool,
    /// The Kafka source reached the brokers and subscribed.
    pub kafka_connected: AtomicBool,
    /// Where the HTTP server listens, once it does.
    pub http_addr: OnceLock<std::net::SocketAddr>,
    pub metrics: Metrics,
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            messages_committed: AtomicU64::new(0),
            records_committed: AtomicU64::new(0),
            events_written: AtomicU64::new(0),
            decisions_allow: AtomicU64::new(0),
            decisions_deny: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            mqtt_subscribed: AtomicBool::new(false),
            postgres_ok: AtomicBool::new(true),
            kafka_connected: AtomicBool::new(false),
            http_addr: OnceLock::new(),
            metrics: Metrics::new(),
        }
    }
}
