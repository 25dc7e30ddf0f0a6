//! Batches processed by tasks of their own, several at once, acknowledged strictly in order.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::path::{Committed, EventPath, Inbound};
use crate::retry::Cancelled;

/// Up to `max` batches in flight, so one is judged while the one before it is written. A
/// batch's acknowledgement `A` (Kafka offsets, say) is handed back only once it and every batch
/// started before it have committed: acknowledging a later batch first could skip an earlier
/// one that then fails.
pub struct InFlight<A> {
    batches: VecDeque<(A, JoinHandle<Result<Committed, Cancelled>>)>,
    max: usize,
}

/// Why a batch in flight did not commit: nothing of it, or of any later batch, may be
/// acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum NotCommitted {
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    #[error("the batch's task failed: {0}")]
    Failed(#[from] tokio::task::JoinError),
}

impl<A> InFlight<A> {
    pub fn new(max: usize) -> Self {
        Self {
            batches: VecDeque::new(),
            max: max.max(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Whether as many batches are in flight as may be: wait for [`Self::oldest`] first.
    pub fn is_full(&self) -> bool {
        self.batches.len() >= self.max
    }

    /// Starts processing `batch` through `path`; `ack` comes back with its outcome.
    pub fn start(
        &mut self,
        path: &Arc<EventPath>,
        batch: Vec<Inbound>,
        ack: A,
        cancel: &CancellationToken,
    ) {
        let (path, cancel) = (path.clone(), cancel.clone());
        let task = tokio::spawn(async move { path.process(&batch, &cancel).await });
        self.batches.push_back((ack, task));
    }

    /// The oldest batch's outcome, once it is done; never resolves while none is in flight.
    /// Cancel-safe: a batch leaves only when its outcome is returned.
    pub async fn oldest(&mut self) -> (A, Result<Committed, NotCommitted>) {
        let Some((_, task)) = self.batches.front_mut() else {
            return std::future::pending().await;
        };
        let outcome = task.await;
        let (ack, _) = self.batches.pop_front().expect("the batch just awaited");
        let outcome = match outcome {
            Ok(Ok(committed)) => Ok(committed),
            Ok(Err(cancelled)) => Err(cancelled.into()),
            Err(e) => {
                error!(error = %e, "a batch task failed; its messages will be redelivered");
                Err(e.into())
            }
        };
        (ack, outcome)
    }

    /// Forgets the batches still in flight: their tasks finish or give up on their own, and
    /// their messages, never acknowledged, are redelivered (idempotent rows absorb that).
    pub fn abandon(&mut self) {
        self.batches.clear();
    }
}
