//! Counters the engine keeps about itself (exported as metrics in a later slice; read by `demo`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
    pub mqtt_subscribed: AtomicBool,
    /// False from a failed write until the next successful one (what `/readyz` will report).
    pub postgres_ok: AtomicBool,
    pub kafka_assigned: AtomicBool,
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
            kafka_assigned: AtomicBool::new(false),
        }
    }
}
