//! One segment's actor. A `Flush` claims the segment (no other engine sends it meanwhile) and
//! sends every version published and not yet sent, oldest first, each acknowledged by the
//! broker before the next one goes, then records them as sent: agents see a segment's versions
//! in order. The actor handles one flush at a time (`AtomicResponse`), so two wake-ups for one
//! segment never send in parallel.
//!
//! A crash after the broker's acknowledgement and before the record sends those versions again
//! on the next flush; agents ignore a version they already have (`distribution::offer`), so
//! at-least-once on the wire is exactly-once in effect.

use std::sync::Arc;

use actix::fut::wrap_future;
use actix::{Actor, ActorFutureExt, AtomicResponse, Context, Handler, Message, Supervised};
use portcullis_engine::distribution::SegmentKey;
use tracing::info;

use super::outbox::{OutboxError, SegmentOutbox};
use crate::entity::{Entity, Lease};

/// Sends what is waiting. Answered once everything waiting has been sent, or on the first
/// failure (what was sent before it stays sent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Flush;

/// Versions sent by one flush, in order; and the latest version sent so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flushed {
    pub sent: Vec<u64>,
    pub sent_through: u64,
}

/// A flush that stopped: what it sent before, and why it stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error} (sent before stopping: {sent:?})")]
pub struct FlushError {
    pub sent: Vec<u64>,
    pub error: OutboxError,
}

impl Message for Flush {
    type Result = Result<Flushed, FlushError>;
}

pub struct SegmentActor<O: SegmentOutbox> {
    key: SegmentKey,
    outbox: Arc<O>,
    /// The latest version sent (0: none); loaded on activation, kept by each flush.
    sent_through: u64,
    lease: Lease,
}

impl<O: SegmentOutbox> SegmentActor<O> {
    pub fn sent_through(&self) -> u64 {
        self.sent_through
    }
}

impl<O: SegmentOutbox> Entity for SegmentActor<O> {
    type Key = SegmentKey;
    type Services = O;
    type Error = OutboxError;
    const KIND: &'static str = "segment";

    async fn activate(key: SegmentKey, outbox: Arc<O>, lease: Lease) -> Result<Self, OutboxError> {
        let sent_through = outbox.sent_through(key.clone()).await?;
        Ok(Self {
            key,
            outbox,
            sent_through,
            lease,
        })
    }
}

impl<O: SegmentOutbox> Actor for SegmentActor<O> {
    type Context = Context<Self>;
}

impl<O: SegmentOutbox> Supervised for SegmentActor<O> {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // Nothing here runs user input; the state is what Postgres says, re-read by the next
        // flush's query of unsent versions.
        self.lease.restarting();
    }
}

impl<O: SegmentOutbox> Handler<Flush> for SegmentActor<O> {
    type Result = AtomicResponse<Self, Result<Flushed, FlushError>>;

    fn handle(&mut self, _: Flush, _ctx: &mut Context<Self>) -> Self::Result {
        let (outbox, key) = (self.outbox.clone(), self.key.clone());
        let work = async move {
            let Some((claim, versions)) =
                outbox
                    .claim(key.clone())
                    .await
                    .map_err(|error| FlushError {
                        sent: Vec::new(),
                        error,
                    })?
            else {
                return Ok(Vec::new());
            };
            let mut sent = Vec::new();
            let mut failed = None;
            for version in versions {
                let number = version.version;
                if let Err(e) = outbox.send(key.clone(), version).await {
                    failed = Some(e);
                    break;
                }
                sent.push(number);
            }
            let released = outbox.release(claim, key.clone(), sent.clone()).await;
            match failed.map_or(released, Err) {
                Ok(()) => {
                    for v in &sent {
                        info!(segment = %key, version = v, "segment policy version sent");
                    }
                    Ok(sent)
                }
                // Sent but not recorded: sent again by a later flush, and ignored by agents.
                Err(error) => Err(FlushError { sent, error }),
            }
        };
        AtomicResponse::new(Box::pin(wrap_future(work).map(
            |outcome: Result<Vec<u64>, FlushError>, act: &mut Self, _| {
                let sent = outcome?;
                if let Some(&last) = sent.last() {
                    act.sent_through = act.sent_through.max(last);
                }
                Ok(Flushed {
                    sent,
                    sent_through: act.sent_through,
                })
            },
        )))
    }
}
