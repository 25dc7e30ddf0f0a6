//! Decision API queries of a tenant whose rules recently ran long are answered on a thread of
//! their own, one query at a time, instead of on the caller's thread (an HTTP worker).
//!
//! The API evaluates on its HTTP workers, one per core (docs/decisions/0006). A rule that runs
//! into the evaluation limit holds its worker for the whole limit, so a few such queries at once
//! would hold every worker and stall every tenant. Once a tenant's query has run into the limit,
//! or taken half of it, that tenant's queries go to this lane for a while: a runaway rule then
//! holds the lane, and queries of other tenants keep the workers. Queries beyond the lane's
//! queue are refused (503) rather than left to pile up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_engine::{PolicyError, TenantId};
use tokio::sync::oneshot;
use tracing::warn;

use crate::local_query::QueryError;
use crate::messages::{Query, QueryReply};
use crate::TenantDirectory;

/// The lane thread's name, as `top -H` and /proc show it.
pub const SLOW_LANE_THREAD: &str = "policy-slow-lane";

type Reply = oneshot::Sender<Result<QueryReply, QueryError>>;

pub struct SlowLane {
    directory: Arc<TenantDirectory>,
    /// Tenants on the lane, until when. Checked on every query: `held` counts the entries so
    /// that the common case, nobody on the lane, takes no lock.
    until: Mutex<HashMap<TenantId, Instant>>,
    held: AtomicUsize,
    hold: Duration,
    queue: SyncSender<(TenantId, Query, Reply)>,
}

impl SlowLane {
    /// Starts the lane's thread. A tenant stays on the lane for `hold` after its last slow
    /// query; at most `capacity` queries wait for the lane.
    pub fn start(
        directory: Arc<TenantDirectory>,
        hold: Duration,
        capacity: usize,
    ) -> std::io::Result<Arc<Self>> {
        let (queue, jobs) = sync_channel::<(TenantId, Query, Reply)>(capacity.max(1));
        let lane = Arc::new(Self {
            directory,
            until: Mutex::default(),
            held: AtomicUsize::new(0),
            hold,
            queue,
        });
        // The thread keeps only a weak handle: dropping the lane closes the queue and ends it.
        let weak = Arc::downgrade(&lane);
        std::thread::Builder::new()
            .name(SLOW_LANE_THREAD.into())
            .spawn(move || {
                while let Ok((tenant, query, reply)) = jobs.recv() {
                    let Some(lane) = weak.upgrade() else { return };
                    let answer = lane.timed(&tenant, query);
                    let _ = reply.send(answer);
                }
            })?;
        Ok(lane)
    }

    /// Answers `q` for `tenant`: on this thread, or on the lane while the tenant is held there.
    pub async fn query(&self, tenant: &TenantId, q: Query) -> Result<QueryReply, QueryError> {
        if !self.holds(tenant) {
            return self.timed(tenant, q);
        }
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send((tenant.clone(), q, reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(QueryError::Throttled(tenant.clone())),
            Err(TrySendError::Disconnected(_)) => {
                return Err(QueryError::Policy(PolicyError::Eval(
                    "the slow lane has stopped".into(),
                )))
            }
        }
        answer.await.unwrap_or_else(|_| {
            Err(QueryError::Policy(PolicyError::Eval(
                "the slow lane dropped the query".into(),
            )))
        })
    }

    /// Whether `tenant`'s queries go to the lane now.
    pub fn holds(&self, tenant: &TenantId) -> bool {
        if self.held.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut until = self.lock();
        match until.get(tenant) {
            Some(t) if *t > Instant::now() => true,
            Some(_) => {
                until.remove(tenant);
                self.held.store(until.len(), Ordering::Relaxed);
                false
            }
            None => false,
        }
    }

    /// Evaluates on the calling thread and puts the tenant on the lane (or keeps it there) if
    /// the evaluation ran into the limit or took half of it.
    fn timed(&self, tenant: &TenantId, q: Query) -> Result<QueryReply, QueryError> {
        let started = Instant::now();
        let answer = self.directory.query_here(tenant, q);
        let took = started.elapsed();
        let limited = matches!(
            answer,
            Err(QueryError::Policy(PolicyError::LimitExceeded(_)))
        );
        if limited || took >= self.directory.loader().eval_timeout() / 2 {
            self.hold(tenant, took, limited);
        }
        answer
    }

    fn hold(&self, tenant: &TenantId, took: Duration, limited: bool) {
        let mut until = self.lock();
        let new = until
            .insert(tenant.clone(), Instant::now() + self.hold)
            .is_none_or(|t| t <= Instant::now());
        self.held.store(until.len(), Ordering::Relaxed);
        if new {
            let why = if limited {
                "ran into the evaluation limit"
            } else {
                "took over half the evaluation limit"
            };
            warn!(%tenant, took_ms = took.as_millis() as u64, hold_secs = self.hold.as_secs(),
                  "a decision API query {why}: this tenant's queries are answered on the slow lane, one at a time");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Instant>> {
        self.until.lock().unwrap_or_else(|p| p.into_inner())
    }
}
