//! What the engine knows about itself: health flags read by `/readyz`, and the Prometheus
//! metrics served at `/metrics`. The counters `demo`, `bench` and tests read are the metrics
//! themselves, so the two can never disagree.

use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use crate::telemetry::metrics::{sum, Metrics};

#[derive(Debug)]
pub struct Stats {
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
    /// Source messages acknowledged after their rows were committed.
    pub fn messages_committed(&self) -> u64 {
        sum(&self.metrics.messages_committed, &[])
    }

    /// Records fully handled (an event with its decision, or a dead letter), committed.
    pub fn records_committed(&self) -> u64 {
        self.events_judged() + self.dead_letters()
    }

    /// Events judged and committed (a redelivered event counts again).
    pub fn events_judged(&self) -> u64 {
        sum(&self.metrics.events, &[])
    }

    /// New event rows stored.
    pub fn events_stored(&self) -> u64 {
        self.metrics.events_stored.get()
    }

    pub fn decisions(&self, outcome: &str) -> u64 {
        sum(&self.metrics.decisions, &[("outcome", outcome)])
    }

    pub fn dead_letters(&self) -> u64 {
        sum(&self.metrics.dead_letters, &[])
    }

    /// Batches that had to be retried (Postgres unavailable, tenant actor restarting, ...).
    pub fn retries(&self) -> u64 {
        self.metrics.batch_retries.get()
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            mqtt_subscribed: AtomicBool::new(false),
            postgres_ok: AtomicBool::new(true),
            kafka_connected: AtomicBool::new(false),
            http_addr: OnceLock::new(),
            metrics: Metrics::new(),
        }
    }
}
