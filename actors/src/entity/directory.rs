//! The live entities of one kind, by key: activated on first message, passivated when idle or
//! past the kind's cap, one actor per key at most.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use actix::dev::ToEnvelope;
use actix::{Addr, Handler, Message, Supervisor};
use lru::LruCache;
use tokio::sync::Notify;
use tracing::debug;

use super::{Arbiters, Entity, EntityLimits, EntityStats, Lease};

/// Why a message could not be answered by its entity.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntityError<E: std::error::Error> {
    /// The entity could not be activated.
    #[error(transparent)]
    Activation(E),
    /// The actor stopped (its task ended) with the message in its mailbox: nothing was done
    /// with it, and asking again activates the entity afresh.
    #[error("the {kind} actor for {key} stopped before answering")]
    Stopped { kind: &'static str, key: String },
}

/// Finds or activates the entity of a key; see the module notes of [`crate::entity`].
pub struct EntityDirectory<E: Entity> {
    arbiters: Arc<Arbiters>,
    services: Arc<E::Services>,
    limits: EntityLimits,
    inner: Arc<Inner<E>>,
}

struct Inner<E: Entity> {
    slots: Mutex<Slots<E>>,
    stats: Arc<EntityStats>,
}

struct Slots<E: Entity> {
    /// Serving entities, least recently used last out.
    live: LruCache<E::Key, Live<E>>,
    /// Passivated entities whose actor has not stopped yet: their key waits for it.
    draining: HashMap<E::Key, (u64, Arc<Notify>)>,
    /// One gate per key being activated, so a key is loaded once however many ask at once.
    activating: HashMap<E::Key, Arc<tokio::sync::Mutex<()>>>,
    next_id: u64,
}

struct Live<E: Entity> {
    addr: Addr<E>,
    /// Which activation this is: its lease names it when it ends.
    id: u64,
    last_used: Instant,
}

/// What `addr` does next for a key, decided under the lock.
enum Step<E: Entity> {
    Serve(Addr<E>),
    WaitForStop(tokio::sync::futures::OwnedNotified),
    Activate(Arc<tokio::sync::Mutex<()>>),
}

impl<E: Entity> EntityDirectory<E> {
    /// A directory of `E`s on `arbiters`. Must be called inside a tokio runtime: the idle sweep
    /// runs there, until the directory is dropped.
    pub fn new(arbiters: Arc<Arbiters>, services: Arc<E::Services>, limits: EntityLimits) -> Self {
        let limits = EntityLimits {
            max_live: limits.max_live.max(1),
            mailbox: limits.mailbox.max(1),
            ..limits
        };
        let inner = Arc::new(Inner {
            slots: Mutex::new(Slots {
                live: LruCache::unbounded(),
                draining: HashMap::new(),
                activating: HashMap::new(),
                next_id: 0,
            }),
            stats: Arc::new(EntityStats::new(E::KIND)),
        });
        let weak = Arc::downgrade(&inner);
        let (every, idle_after) = (limits.sweep_every(), limits.idle_after);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.passivate_where(|live| live.last_used.elapsed() >= idle_after);
            }
        });
        Self {
            arbiters,
            services,
            limits,
            inner,
        }
    }

    pub fn services(&self) -> &Arc<E::Services> {
        &self.services
    }

    pub fn limits(&self) -> EntityLimits {
        self.limits
    }

    /// This kind's counters (shared: they outlive the directory if kept).
    pub fn stats(&self) -> Arc<EntityStats> {
        self.inner.stats.clone()
    }

    /// Entities serving now (passivated ones still finishing their mailbox not included).
    pub fn live(&self) -> usize {
        self.inner.lock().live.len()
    }

    /// Sends `msg` to `key`'s entity, activating it first if it is not live, and waits for its
    /// answer. Waits too while the entity's mailbox is full (backpressure).
    pub async fn send<M>(&self, key: &E::Key, msg: M) -> Result<M::Result, EntityError<E::Error>>
    where
        E: Handler<M>,
        E::Context: ToEnvelope<E, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let addr = self.addr(key).await.map_err(EntityError::Activation)?;
        addr.send(msg).await.map_err(|_| EntityError::Stopped {
            kind: E::KIND,
            key: key.to_string(),
        })
    }

    /// The address of `key`'s entity, activating it if needed. Hold it only briefly: an entity
    /// is passivated only once no address of it is held.
    pub async fn addr(&self, key: &E::Key) -> Result<Addr<E>, E::Error> {
        loop {
            let step = self.inner.lock().step(key);
            match step {
                Step::Serve(addr) => return Ok(addr),
                Step::WaitForStop(stopped) => stopped.await,
                Step::Activate(gate) => {
                    // Closed however this ends, a caller giving up (dropping this future)
                    // included, so gates never pile up.
                    let mut gate = Gate {
                        held: None,
                        gate,
                        key,
                        inner: &self.inner,
                    };
                    gate.held = Some(gate.gate.clone().lock_owned().await);
                    // Activated by the caller that held the gate before us, or passivated
                    // meanwhile: look again.
                    let still_absent = matches!(self.inner.lock().step(key), Step::Activate(_));
                    if still_absent {
                        return self.activate(key).await;
                    }
                }
            }
        }
    }

    /// Loads and starts `key`'s entity. Called with its gate held, and nothing live or draining.
    async fn activate(&self, key: &E::Key) -> Result<Addr<E>, E::Error> {
        let id = {
            let mut slots = self.inner.lock();
            slots.next_id += 1;
            slots.next_id
        };
        let weak = Arc::downgrade(&self.inner);
        let released = key.clone();
        let lease = Lease::new(
            key.to_string(),
            self.inner.stats.clone(),
            Box::new(move || Inner::released(&weak, &released, id)),
        );
        let entity = match E::activate(key.clone(), self.services.clone(), lease).await {
            Ok(entity) => entity,
            Err(e) => {
                self.inner.stats.activation_failed();
                return Err(e);
            }
        };
        // Started before the lock is taken: should the arbiter be gone, the entity is dropped
        // here and its lease takes the lock.
        let mailbox = self.limits.mailbox;
        let addr = Supervisor::start_in_arbiter(&self.arbiters.place(key), move |ctx| {
            ctx.set_mailbox_capacity(mailbox);
            entity
        });
        if !addr.connected() {
            // Its arbiter has stopped (shutting down): not live, not counted. A message sent
            // to it comes back as `EntityError::Stopped`.
            return Ok(addr);
        }
        self.inner.stats.activated();
        debug!(kind = E::KIND, %key, "entity activated");
        let mut slots = self.inner.lock();
        slots.live.push(
            key.clone(),
            Live {
                addr: addr.clone(),
                id,
                last_used: Instant::now(),
            },
        );
        while slots.live.len() > self.limits.max_live {
            slots.passivate_lru(&self.inner.stats);
        }
        Ok(addr)
    }

    /// The keys of the entities live now (for telling each of them something, such as to reload
    /// after a change that may have been missed).
    pub fn live_keys(&self) -> Vec<E::Key> {
        self.inner
            .lock()
            .live
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Passivates every live entity now (they stop once their mailboxes are empty).
    pub fn passivate_all(&self) {
        self.inner.passivate_where(|_| true);
    }
}

/// A key's activation gate, held by the caller activating it; closed when dropped.
struct Gate<'a, E: Entity> {
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
    gate: Arc<tokio::sync::Mutex<()>>,
    key: &'a E::Key,
    inner: &'a Inner<E>,
}

impl<E: Entity> Drop for Gate<'_, E> {
    fn drop(&mut self) {
        drop(self.held.take());
        self.inner.lock().close_gate(self.key, &self.gate);
    }
}

impl<E: Entity> Drop for EntityDirectory<E> {
    fn drop(&mut self) {
        self.passivate_all();
    }
}

impl<E: Entity> Inner<E> {
    fn lock(&self) -> MutexGuard<'_, Slots<E>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Passivates the live entities `which` picks, least recently used first, stopping at the
    /// first it does not pick (the idle sweep: entities further up were used later).
    fn passivate_where(&self, which: impl Fn(&Live<E>) -> bool) {
        let mut slots = self.lock();
        while slots.live.peek_lru().is_some_and(|(_, live)| which(live)) {
            slots.passivate_lru(&self.stats);
        }
        if slots.live.is_empty() && slots.draining.is_empty() {
            // Give back what a burst of activations grew.
            slots.draining.shrink_to_fit();
            slots.activating.shrink_to_fit();
        }
    }

    /// Called when an entity's lease drops: its actor has stopped for good.
    fn released(inner: &Weak<Self>, key: &E::Key, id: u64) {
        let Some(inner) = inner.upgrade() else { return };
        let mut slots = inner.lock();
        if slots.draining.get(key).is_some_and(|(d, _)| *d == id) {
            let (_, stopped) = slots.draining.remove(key).expect("just seen");
            stopped.notify_waiters();
            inner.stats.gone();
        } else if slots.live.peek(key).is_some_and(|l| l.id == id) {
            // Its task ended without being passivated (an arbiter stopping, a panic that
            // escaped its handler): the next message activates it afresh.
            slots.live.pop(key);
            inner.stats.gone();
        }
    }
}

impl<E: Entity> Slots<E> {
    fn step(&mut self, key: &E::Key) -> Step<E> {
        if let Some(live) = self.live.get_mut(key) {
            live.last_used = Instant::now();
            return Step::Serve(live.addr.clone());
        }
        if let Some((_, stopped)) = self.draining.get(key) {
            // Made under the lock, so the notification of a stop that follows is not missed.
            return Step::WaitForStop(stopped.clone().notified_owned());
        }
        Step::Activate(self.activating.entry(key.clone()).or_default().clone())
    }

    fn close_gate(&mut self, key: &E::Key, gate: &Arc<tokio::sync::Mutex<()>>) {
        // Only if nobody else waits on it (the map's and our clone are the last two).
        if self
            .activating
            .get(key)
            .is_some_and(|g| Arc::ptr_eq(g, gate) && Arc::strong_count(g) <= 2)
        {
            self.activating.remove(key);
        }
    }

    fn passivate_lru(&mut self, stats: &EntityStats) {
        if let Some((key, live)) = self.live.pop_lru() {
            // Dropping the directory's address lets the actor stop once its mailbox is empty
            // and no sender holds another.
            self.draining
                .insert(key, (live.id, Arc::new(Notify::new())));
            stats.passivated();
        }
    }
}
