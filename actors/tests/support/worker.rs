//! A small entity kind for testing the directory on its own: it counts the messages it has
//! handled, holds some state, and panics when told to.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, Supervised};
use portcullis_actors::entity::{catch_panic, Lease, Panicked};
use portcullis_actors::Entity;

#[derive(Default)]
pub struct Services {
    /// Times a worker's state was loaded: activations and restarts.
    pub loads: AtomicUsize,
    /// Bytes of state each worker holds.
    pub state_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("no worker {0}")]
pub struct NoSuchWorker(pub u32);

/// Keys at or above this are not workers.
pub const MISSING: u32 = 1_000_000;

pub struct Worker {
    key: u32,
    services: Arc<Services>,
    lease: Lease,
    state: Vec<u8>,
    handled: u32,
}

impl Worker {
    fn load(&mut self) {
        self.services.loads.fetch_add(1, Ordering::SeqCst);
        self.state = vec![7; self.services.state_bytes];
        self.handled = 0;
    }
}

impl Entity for Worker {
    type Key = u32;
    type Services = Services;
    type Error = NoSuchWorker;
    const KIND: &'static str = "worker";

    async fn activate(
        key: u32,
        services: Arc<Services>,
        lease: Lease,
    ) -> Result<Self, NoSuchWorker> {
        if key >= MISSING {
            return Err(NoSuchWorker(key));
        }
        let mut worker = Worker {
            key,
            services,
            lease,
            state: Vec::new(),
            handled: 0,
        };
        worker.load();
        Ok(worker)
    }
}

impl Actor for Worker {
    type Context = Context<Self>;
}

impl Supervised for Worker {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.lease.restarting();
        self.load();
    }
}

/// Handle one message (panicking if told to); answers how many this activation has handled.
pub struct Work {
    pub panic: bool,
}

impl Message for Work {
    type Result = Result<u32, Panicked>;
}

impl Handler<Work> for Worker {
    type Result = Result<u32, Panicked>;

    fn handle(&mut self, msg: Work, ctx: &mut Context<Self>) -> Self::Result {
        let key = self.key;
        let handled = &mut self.handled;
        let state = &self.state;
        catch_panic(ctx, &key, || {
            assert!(!msg.panic, "told to panic");
            *handled += 1;
            // The state is there to take memory: keep it from being optimised away.
            std::hint::black_box(state.len());
            *handled
        })
    }
}
