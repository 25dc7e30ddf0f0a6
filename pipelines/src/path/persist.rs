//! Stage 3: a batch's rows are written in one transaction. Only this stage is retried: what
//! judging produced is kept, so a retry judges nothing again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use portcullis_engine::DeadLetter;
use tokio_util::sync::CancellationToken;
use tracing::{error, info_span, warn, Instrument};

use super::{Inbound, RowSet, RowSink, SinkError, WriteCounts};
use crate::retry::{Backoff, Cancelled};
use crate::telemetry::stats::Stats;

pub struct Persist {
    sink: Arc<dyn RowSink>,
    stats: Arc<Stats>,
}

impl Persist {
    pub fn new(sink: Arc<dyn RowSink>, stats: Arc<Stats>) -> Self {
        Self { sink, stats }
    }

    pub fn sink(&self) -> &Arc<dyn RowSink> {
        &self.sink
    }

    /// Writes `sets` (one per message of `batch`) until they commit, retrying with backoff
    /// while the sink is unavailable. Returns `Cancelled` only on shutdown, with nothing
    /// acknowledged. A write refused for what the rows contain would be refused on every retry
    /// and stall the source: the batch is then written message by message, and a message whose
    /// rows are refused is set aside as a dead letter that carries the sink's reason.
    pub async fn persist(
        &self,
        batch: &[Inbound],
        sets: &mut [RowSet],
        cancel: &CancellationToken,
    ) -> Result<WriteCounts, Cancelled> {
        let mut backoff = Backoff::for_writes();
        loop {
            match self.write(sets).await {
                Ok(counts) => return Ok(counts),
                Err(SinkError::Refused(e)) => {
                    warn!(error = %e, messages = batch.len(),
                          "the sink refused rows of this batch; writing its messages one at a time");
                    return self.one_by_one(batch, sets, cancel).await;
                }
                Err(e) => {
                    self.not_committed(&e, sets.len(), &mut backoff);
                    backoff.wait(cancel).await?;
                }
            }
        }
    }

    async fn one_by_one(
        &self,
        batch: &[Inbound],
        sets: &mut [RowSet],
        cancel: &CancellationToken,
    ) -> Result<WriteCounts, Cancelled> {
        let mut total = WriteCounts::default();
        for (msg, set) in batch.iter().zip(sets.iter_mut()) {
            let mut backoff = Backoff::for_writes();
            let mut refusals = 0;
            loop {
                match self.write(std::slice::from_ref(set)).await {
                    Ok(counts) => {
                        total.add(&counts);
                        break;
                    }
                    Err(SinkError::Refused(e)) => {
                        refusals += 1;
                        match set_aside(msg, &e, refusals, self.sink.name()) {
                            Some(dead) => *set = RowSet::dead_letter(dead),
                            None => {
                                // Not even its record is taken: said loudly, then passed, so
                                // one message cannot stall its source.
                                error!(error = %e, source = msg.origin.source().as_str(),
                                       topic = msg.origin.topic(),
                                       "a message and its dead letter were refused; it is not stored");
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        self.not_committed(&e, 1, &mut backoff);
                        backoff.wait(cancel).await?;
                    }
                }
            }
        }
        Ok(total)
    }

    async fn write(&self, sets: &[RowSet]) -> Result<WriteCounts, SinkError> {
        let started = Instant::now();
        let written = self
            .sink
            .write(sets)
            .instrument(info_span!("sink.write", messages = sets.len()))
            .await;
        let m = &self.stats.metrics;
        if let Ok(counts) = &written {
            self.stats.postgres_ok.store(true, Ordering::Relaxed);
            m.write_seconds.observe(started.elapsed().as_secs_f64());
            // Rows are facts of the store, counted as they commit: a batch retried after a
            // partial commit does not count them twice.
            m.events_stored.inc_by(counts.of("events"));
        }
        written
    }

    fn not_committed(&self, e: &SinkError, messages: usize, backoff: &mut Backoff) {
        if matches!(e, SinkError::Unavailable(_)) {
            self.stats.postgres_ok.store(false, Ordering::Relaxed);
        }
        self.stats.metrics.batch_retries.inc();
        let retry_in_ms = backoff.clone().next_delay().as_millis() as u64;
        warn!(error = %e, messages, retry_in_ms, "batch not committed; retrying");
    }
}

/// What is stored of a message whose rows the sink refused, the `refusals`-th time: its dead
/// letter with the sink's reason; then the same without the payload (which may be what is
/// refused); then nothing.
fn set_aside(msg: &Inbound, e: &str, refusals: usize, sink: &str) -> Option<DeadLetter> {
    let reason = format!("its rows could not be stored in {sink}: {e}");
    match refusals {
        1 => Some(DeadLetter::new(
            msg.origin.clone(),
            None,
            &msg.payload,
            reason,
        )),
        2 => {
            let mut dead = DeadLetter::new(msg.origin.clone(), None, &msg.payload, reason);
            dead.payload.clear();
            dead.reason = format!(
                "its dead letter could not be stored in {sink} with its payload, which is dropped: {e}"
            );
            Some(dead)
        }
        _ => None,
    }
}
