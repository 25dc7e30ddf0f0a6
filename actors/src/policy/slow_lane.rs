//! Decision API queries of a tenant whose rules recently ran long are answered on a thread of
//! their own, one query at a time, instead of on the caller's thread (an HTTP worker).
//!
//! The API evaluates on its HTTP workers, one per core (docs/decisions/0006). A rule that runs
//! into the evaluation limit holds its worker for the whole limit, so a few such queries at once
//! would hold every worker and stall every tenant. Once a tenant's evaluation has run into the
//! limit, or taken half of it, that tenant's queries go to this lane for a while: a runaway rule
//! then holds the lane, and queries of other tenants keep the workers. Each held tenant may have
//! a few queries waiting; more are refused (503) rather than left to pile up.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use portcullis_engine::{PolicyError, TenantId};
use tokio::sync::oneshot;
use tracing::{error, warn};

use super::query::{answer_query, Query, QueryError, QueryReply};
use super::{PolicyStore, ServingPolicy};

/// The lane thread's name, as `top -H` and /proc show it.
pub const SLOW_LANE_THREAD: &str = "policy-slow-lane";

type Reply = oneshot::Sender<Result<QueryReply, QueryError>>;
type Job = (Arc<ServingPolicy>, Query, Reply);

/// Answers decision API queries: on the caller's thread, or on the lane for held tenants.
pub struct SlowLane {
    store: Arc<PolicyStore>,
    state: Mutex<Held>,
    /// How many tenants are held: the common case, none, is one atomic load per query.
    held: AtomicUsize,
    hold: Duration,
    per_tenant: usize,
    queue: SyncSender<Job>,
}

#[derive(Default)]
struct Held {
    /// Held tenants, until when.
    until: HashMap<TenantId, Instant>,
    /// Queries each tenant has waiting for, or running on, the lane.
    queued: HashMap<TenantId, usize>,
}

impl SlowLane {
    /// Starts the lane's thread. A tenant stays on the lane for `hold` after its last slow
    /// evaluation, with at most `per_tenant` of its queries on the lane at once.
    pub fn start(
        store: Arc<PolicyStore>,
        hold: Duration,
        per_tenant: usize,
    ) -> std::io::Result<Arc<Self>> {
        let per_tenant = per_tenant.max(1);
        // Room for every held tenant's share is not needed: a full queue refuses like a full
        // share does.
        let (queue, jobs) = sync_channel::<Job>(per_tenant * 8);
        let lane = Arc::new(Self {
            store,
            state: Mutex::default(),
            held: AtomicUsize::new(0),
            hold,
            per_tenant,
            queue,
        });
        // The thread keeps only a weak handle: dropping the lane closes the queue and ends it.
        let weak = Arc::downgrade(&lane);
        std::thread::Builder::new()
            .name(SLOW_LANE_THREAD.into())
            .spawn(move || {
                while let Ok((serving, query, reply)) = jobs.recv() {
                    let Some(lane) = weak.upgrade() else { return };
                    let tenant = serving.policy().tenant().clone();
                    // A caller that gave up (its client went away) needs no answer.
                    let answer = (!reply.is_closed()).then(|| {
                        // answer_query catches a panicking evaluation; this keeps the lane alive
                        // through anything else.
                        catch_unwind(AssertUnwindSafe(|| lane.timed(&serving, query)))
                            .unwrap_or_else(|_| {
                                error!(%tenant, "slow lane query panicked");
                                Err(PolicyError::Panicked.into())
                            })
                    });
                    // Off the lane before the caller hears back: it may ask again at once, and
                    // must not find its own finished query still counted against its share.
                    lane.dequeued(&tenant);
                    if let Some(answer) = answer {
                        let _ = reply.send(answer);
                    }
                }
            })?;
        Ok(lane)
    }

    /// Answers `q` for `tenant`: on this thread, or on the lane while the tenant is held there.
    /// A tenant not activated yet is activated first, on a blocking thread.
    pub async fn query(&self, tenant: &TenantId, q: Query) -> Result<QueryReply, QueryError> {
        let serving = self.serving(tenant).await?;
        if !self.holds(tenant) {
            return self.timed(&serving, q);
        }
        {
            let mut state = self.lock();
            let queued = state.queued.entry(tenant.clone()).or_default();
            if *queued >= self.per_tenant {
                return Err(QueryError::Throttled(tenant.clone()));
            }
            *queued += 1;
        }
        let (reply, answer) = oneshot::channel();
        if let Err(e) = self.queue.try_send((serving, q, reply)) {
            self.dequeued(tenant);
            return Err(match e {
                TrySendError::Full(_) => QueryError::Throttled(tenant.clone()),
                TrySendError::Disconnected(_) => {
                    PolicyError::Eval("the slow lane has stopped".into()).into()
                }
            });
        }
        answer.await.unwrap_or_else(|_| {
            Err(PolicyError::Eval("the slow lane dropped the query".into()).into())
        })
    }

    /// `tenant`'s serving policy; loading a bundle, on first use, runs on a blocking thread.
    async fn serving(&self, tenant: &TenantId) -> Result<Arc<ServingPolicy>, QueryError> {
        if let Some(serving) = self.store.serving(tenant) {
            return Ok(serving);
        }
        let (store, t) = (self.store.clone(), tenant.clone());
        let slot = tokio::task::spawn_blocking(move || store.activate(&t))
            .await
            .map_err(|_| PolicyError::Eval("activating the tenant's policy failed".into()))??;
        Ok(slot.load_full())
    }

    /// Whether `tenant`'s queries go to the lane now.
    pub fn holds(&self, tenant: &TenantId) -> bool {
        if self.held.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.sweep().until.contains_key(tenant)
    }

    /// The state with every expired hold ended, so that holds end even for tenants that
    /// stopped asking, and the count of held tenants goes back to 0.
    fn sweep(&self) -> MutexGuard<'_, Held> {
        let mut state = self.lock();
        let now = Instant::now();
        state.until.retain(|_, until| *until > now);
        self.held.store(state.until.len(), Ordering::Relaxed);
        state
    }

    /// Until when `tenant`'s queries go to the lane, if they do now.
    pub fn held_until(&self, tenant: &TenantId) -> Option<Instant> {
        if self.held.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.sweep().until.get(tenant).copied()
    }

    /// Evaluates on the calling thread and holds the tenant (or keeps it held) if the
    /// evaluation itself ran into the limit or took half of it. Loading a bundle on first use,
    /// or making an evaluator of a newly activated one, is not the rule's doing and does not
    /// count.
    fn timed(&self, serving: &ServingPolicy, q: Query) -> Result<QueryReply, QueryError> {
        let tenant = serving.policy().tenant();
        let answer = answer_query(serving, q);
        let half = self.store.eval_timeout() / 2;
        match &answer {
            Err(QueryError::Failed(f)) if f.hit_the_limit() => {
                self.hold(tenant, "ran into the evaluation limit")
            }
            Ok(r) if Duration::from_micros(r.answer.eval_micros) >= half => {
                self.hold(tenant, "took over half the evaluation limit")
            }
            _ => {}
        }
        answer
    }

    fn hold(&self, tenant: &TenantId, why: &str) {
        let new = {
            let mut state = self.lock();
            let now = Instant::now();
            let previous = state.until.insert(tenant.clone(), now + self.hold);
            self.held.store(state.until.len(), Ordering::Relaxed);
            previous.is_none_or(|until| until <= now)
        };
        if new {
            warn!(%tenant, hold_secs = self.hold.as_secs(),
                  "a decision API query {why}: this tenant's queries are answered on the slow lane, one at a time");
        }
    }

    fn dequeued(&self, tenant: &TenantId) {
        let mut state = self.lock();
        if let Some(n) = state.queued.get_mut(tenant) {
            *n -= 1;
            if *n == 0 {
                state.queued.remove(tenant);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
