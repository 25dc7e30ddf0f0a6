//! A source that feeds messages from memory through the event path the way the Kafka source
//! does (the same batches, the same batches in flight, acknowledged in order), without a
//! broker: what `portcullis bench engine` measures.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{BatchLimits, InFlight, NotCommitted};
use crate::path::{EventPath, Inbound, WriteCounts};

/// What a memory source did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryRun {
    pub messages: usize,
    pub batches: usize,
    pub stored: WriteCounts,
}

/// Sends every message of `messages` through `path`, in batches closed by count and bytes
/// (there is nothing to wait for, so never by linger), with up to `in_flight` batches at once.
pub async fn run_memory_source(
    path: &Arc<EventPath>,
    messages: impl IntoIterator<Item = Inbound>,
    limits: BatchLimits,
    in_flight: usize,
    cancel: &CancellationToken,
) -> Result<MemoryRun, NotCommitted> {
    let mut run = MemoryRun::default();
    let mut batches = InFlight::new(in_flight);
    let mut messages = messages.into_iter().peekable();
    loop {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < limits.max_messages.max(1) && bytes < limits.max_bytes {
            let Some(m) = messages.next() else { break };
            bytes += m.payload.len();
            batch.push(m);
        }
        if batch.is_empty() && batches.is_empty() {
            return Ok(run);
        }
        if batches.is_full() || batch.is_empty() {
            let (_, outcome) = batches.oldest().await;
            let committed = outcome?;
            // Nothing to acknowledge in memory; the after-commit steps follow all the same.
            path.after_commit(&committed);
            run.stored.add(&committed.stored);
        }
        if !batch.is_empty() {
            run.messages += batch.len();
            run.batches += 1;
            batches.start(path, batch, (), cancel);
        }
        if messages.peek().is_none() && batches.is_empty() {
            return Ok(run);
        }
    }
}
