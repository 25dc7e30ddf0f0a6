//! What a kind of entity has done, counted where it happens and read by `/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters of one kind of entity. The pipelines publish them as
/// `portcullis_entities_live{kind}` and `portcullis_entity_*_total{kind}`.
#[derive(Debug)]
pub struct EntityStats {
    kind: &'static str,
    live: AtomicI64,
    activations: AtomicU64,
    activation_failures: AtomicU64,
    passivations: AtomicU64,
    restarts: AtomicU64,
}

/// A reading of [`EntityStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntityCounts {
    /// Entities whose actor is alive: serving, or passivated and still finishing its mailbox.
    pub live: i64,
    pub activations: u64,
    pub activation_failures: u64,
    pub passivations: u64,
    /// Restarts by supervision after a panic in a handler.
    pub restarts: u64,
}

impl EntityStats {
    pub(crate) fn new(kind: &'static str) -> Self {
        Self {
            kind,
            live: AtomicI64::new(0),
            activations: AtomicU64::new(0),
            activation_failures: AtomicU64::new(0),
            passivations: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
        }
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn read(&self) -> EntityCounts {
        EntityCounts {
            live: self.live.load(Ordering::Relaxed),
            activations: self.activations.load(Ordering::Relaxed),
            activation_failures: self.activation_failures.load(Ordering::Relaxed),
            passivations: self.passivations.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn activated(&self) {
        self.activations.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn activation_failed(&self) {
        self.activation_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn passivated(&self) {
        self.passivations.fetch_add(1, Ordering::Relaxed);
    }

    /// The actor has stopped for good (passivated, or its task ended).
    pub(crate) fn gone(&self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }
}
