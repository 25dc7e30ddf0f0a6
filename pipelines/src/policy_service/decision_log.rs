//! The decision API's decision log: answered queries go through a bounded queue to a writer
//! that inserts them into `api_decisions` in batches. A query is answered only once its
//! decision is queued, so a decision is never served unlogged; a full queue is a 503.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::postgres::{insert_api_decisions, ApiDecisionRow};
use crate::stats::Stats;

/// Most decisions written in one statement.
const BATCH_MAX: usize = 1000;
/// How long a shutting-down engine keeps trying to write its last decisions.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

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
}

/// Writes queued decisions until `cancel`; then refuses new ones and writes what is queued.
pub async fn run_decision_log(
    pool: PgPool,
    mut rx: mpsc::Receiver<ApiDecisionRow>,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) {
    let mut drain_until: Option<Instant> = None;
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = cancel.cancelled() => {
                // From here on senders get `Closed` (a 503), and recv() ends after the backlog.
                rx.close();
                drain_until.get_or_insert_with(|| Instant::now() + DRAIN_DEADLINE);
                rx.recv().await
            }
        };
        let Some(first) = first else { return };
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut delay = Duration::from_millis(50);
        loop {
            match insert_api_decisions(&pool, &batch).await {
                Ok(_) => {
                    stats
                        .metrics
                        .api_decisions_logged
                        .inc_by(batch.len() as u64);
                    break;
                }
                Err(e) if drain_until.is_some_and(|d| Instant::now() > d) => {
                    error!(error = %e, lost = batch.len() + rx.len(), "decision log not written before shutdown");
                    return;
                }
                Err(e) => {
                    warn!(error = %e, rows = batch.len(), "cannot write the decision log; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    if cancel.is_cancelled() {
                        drain_until.get_or_insert_with(|| Instant::now() + DRAIN_DEADLINE);
                    }
                }
            }
        }
    }
}
