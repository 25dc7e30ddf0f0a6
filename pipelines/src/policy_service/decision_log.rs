//! The decision API's decision log: answered queries go through a bounded queue to a writer
//! that inserts them into `api_decisions` in batches. A query is answered only once its
//! decision is queued, so a decision is never served unlogged; a full queue is a 503.
//!
//! The writer runs on a thread of its own, with its own connection: writing the log is
//! throughput work that must never hold up an HTTP worker waiting to answer
//! (docs/decisions/0009). On a host given over to the engine, `tuning.decision_log_nice` also
//! lowers its scheduling priority.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::config::PostgresConfig;
use crate::sinks::postgres::{self, insert_api_decisions, refused_for_content, ApiDecisionRow};
use crate::telemetry::stats::Stats;

/// Most decisions written in one statement, and most bytes (request bodies can be large).
const BATCH_MAX: usize = 1000;
const BATCH_MAX_BYTES: usize = 16 * 1024 * 1024;
/// How long the writer waits for more decisions after the first of a batch. Short on purpose:
/// at 10 ms, each batch became a burst of Postgres work long enough to hold up HTTP workers
/// sharing its cores (docs/decisions/0008).
const LINGER: Duration = Duration::from_millis(1);
/// How long a shutting-down engine keeps trying to write its last decisions.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// The writer thread's name, as `top -H` and /proc show it.
pub const WRITER_THREAD: &str = "decision-log";
#[derive(Clone)]
pub struct DecisionLog {
    tx: mpsc::Sender<ApiDecisionRow>,
}

#[derive(Debug, thiserror::Error)]
#[error("the decision log is {0}; the decision was not served")]
pub struct DecisionLogFull(&'static str);

impl DecisionLog {
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<ApiDecisionRow>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx }, rx)
    }

    /// Queues a decision for the log, or says why it cannot be (full, or shutting down).
    pub fn try_log(&self, row: ApiDecisionRow) -> Result<(), DecisionLogFull> {
        self.tx.try_send(row).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => DecisionLogFull("full (Postgres is behind)"),
            mpsc::error::TrySendError::Closed(_) => DecisionLogFull("closed (shutting down)"),
        })
    }

    /// Holds a place in the log for a decision not made yet: what is done before it is
    /// logged (opening an approval request) is done only once it surely will be.
    pub fn reserve(&self) -> Result<LogPlace<'_>, DecisionLogFull> {
        self.tx.try_reserve().map(LogPlace).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => DecisionLogFull("full (Postgres is behind)"),
            mpsc::error::TrySendError::Closed(_) => DecisionLogFull("closed (shutting down)"),
        })
    }
}

/// A place held in the decision log ([`DecisionLog::reserve`]).
pub struct LogPlace<'a>(mpsc::Permit<'a, ApiDecisionRow>);

impl LogPlace<'_> {
    pub fn log(self, row: ApiDecisionRow) {
        self.0.send(row);
    }
}

/// The running writer; [`DecisionLogWriter::finished`] resolves once it has written what it
/// could and stopped.
pub struct DecisionLogWriter {
    done: oneshot::Receiver<()>,
}

impl DecisionLogWriter {
    pub async fn finished(self) {
        // The sender is dropped when the thread ends, however it ends.
        let _ = self.done.await;
    }
}

/// Starts the writer on its own thread (see the module's note), `nice` steps below the engine's
/// priority, with its own connection to `cfg`'s database, writing what `rx` brings (with
/// receipts, if `receipts`) until `cancel`. The thread's runtime and pool are made on the thread itself; an error making them
/// is returned here.
pub async fn start_decision_log(
    cfg: &PostgresConfig,
    nice: u8,
    rx: mpsc::Receiver<ApiDecisionRow>,
    stats: Arc<Stats>,
    cancel: CancellationToken,
    receipts: bool,
) -> std::io::Result<DecisionLogWriter> {
    let cfg = cfg.clone();
    let (ready_tx, ready) = oneshot::channel::<std::io::Result<()>>();
    let (done_tx, done) = oneshot::channel();
    std::thread::Builder::new()
        .name(WRITER_THREAD.into())
        .spawn(move || {
            let _done = done_tx;
            if nice > 0 {
                crate::tuning::sched::lower_this_threads_priority(i32::from(nice));
            }
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let pool = match postgres::connect_lazy(&cfg, 1) {
                    Ok(pool) => pool,
                    Err(e) => {
                        let _ = ready_tx.send(Err(std::io::Error::other(e)));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                run_decision_log(pool.clone(), rx, stats, cancel, receipts).await;
                pool.close().await;
            });
        })?;
    match ready.await {
        Ok(Ok(())) => Ok(DecisionLogWriter { done }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(std::io::Error::other(
            "the decision log thread ended while starting",
        )),
    }
}

/// Writes queued decisions until `cancel`; then refuses new ones and writes what is queued,
/// for at most [`DRAIN_DEADLINE`] if Postgres is unavailable (what is left then is reported).
async fn run_decision_log(
    pool: PgPool,
    mut rx: mpsc::Receiver<ApiDecisionRow>,
    stats: Arc<Stats>,
    cancel: CancellationToken,
    receipts: bool,
) {
    let mut drain_until: Option<Instant> = None;
    // From the cancel on, senders get `Closed` (a 503) and recv() ends after the backlog.
    let mut start_draining = |rx: &mut mpsc::Receiver<ApiDecisionRow>| {
        rx.close();
        *drain_until.get_or_insert_with(|| Instant::now() + DRAIN_DEADLINE)
    };
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = cancel.cancelled() => {
                start_draining(&mut rx);
                rx.recv().await
            }
        };
        let Some(first) = first else { return };
        let mut bytes = first.size_hint;
        let mut batch = vec![first];
        // Linger for more (the callers were answered already): sleeping, rather than waiting
        // on each arrival, spares the HTTP workers a wake-up of this task per decision.
        if rx.len() < BATCH_MAX {
            tokio::time::sleep(LINGER).await;
        }
        while batch.len() < BATCH_MAX && bytes < BATCH_MAX_BYTES {
            match rx.try_recv() {
                Ok(r) => {
                    bytes += r.size_hint;
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let mut delay = Duration::from_millis(50);
        loop {
            match insert_api_decisions(&pool, &batch, receipts).await {
                Ok(_) => {
                    stats
                        .metrics
                        .api_decisions_logged
                        .inc_by(batch.len() as u64);
                    break;
                }
                Err(e) if refused_for_content(&e) => {
                    // Retrying cannot help: write row by row so only the refused ones are lost,
                    // each reported.
                    write_one_by_one(&pool, &batch, receipts, &stats).await;
                    break;
                }
                Err(e) => {
                    let deadline = cancel.is_cancelled().then(|| start_draining(&mut rx));
                    if deadline.is_some_and(|d| Instant::now() > d) {
                        error!(error = %e, lost = batch.len() + rx.len(),
                               "decision log not written before shutdown");
                        return;
                    }
                    warn!(error = %e, rows = batch.len(), "cannot write the decision log; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

async fn write_one_by_one(pool: &PgPool, batch: &[ApiDecisionRow], receipts: bool, stats: &Stats) {
    for row in batch {
        // A row refused for its content is reported and skipped; any other failure (Postgres
        // going away meanwhile) is retried a while, then reported as lost too.
        let mut attempts = 0;
        loop {
            match insert_api_decisions(pool, std::slice::from_ref(row), receipts).await {
                Ok(_) => {
                    stats.metrics.api_decisions_logged.inc();
                    break;
                }
                Err(e) if refused_for_content(&e) || attempts >= 20 => {
                    stats.metrics.api_decision_log_refused.inc();
                    error!(decision_id = %row.decision_id, tenant = %row.tenant_id, error = %e,
                           "a decision log row could not be stored; it is not logged");
                    break;
                }
                Err(_) => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }
}
