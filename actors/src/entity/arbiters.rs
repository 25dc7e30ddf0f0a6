//! The arbiter threads every kind of entity shares: one per core by default.

use std::hash::{BuildHasher, Hash};

use actix::{Arbiter, ArbiterHandle};

/// A fixed set of actix arbiters (each a thread with its own event loop). An entity is placed on
/// one by hash of its key, for the life of the set.
pub struct Arbiters {
    arbiters: Vec<Arbiter>,
    hasher: std::hash::RandomState,
}

impl Arbiters {
    /// Starts `threads` arbiters (at least one). Must be called inside a running actix `System`.
    pub fn start(threads: usize) -> Self {
        Self {
            arbiters: (0..threads.max(1)).map(|_| Arbiter::new()).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// The arbiter `key` lives on.
    pub fn place(&self, key: &impl Hash) -> ArbiterHandle {
        let i = self.hasher.hash_one(key) % self.arbiters.len() as u64;
        self.arbiters[i as usize].handle()
    }

    /// Stops every arbiter: their actors finish the message in hand and stop.
    pub fn stop(&self) {
        for a in &self.arbiters {
            a.stop();
        }
    }
}

impl Drop for Arbiters {
    fn drop(&mut self) {
        self.stop();
    }
}
