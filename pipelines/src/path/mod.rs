//! The path every message takes, whatever its source, in stages:
//!
//! 1. [`decode`]: each message becomes events, or dead letters that say why not;
//! 2. [`judge`]: each tenant's events are judged by its actor, once;
//! 3. [`persist`]: the batch's rows are written in one transaction; only this is retried;
//! 4. the source acknowledges the batch (Kafka offsets stored, MQTT PUBACKs sent);
//! 5. [`after_commit`] steps see the committed rows (the decision stream today).
//!
//! The rows are one [`RowSet`] per message, which each capability extends; where they are
//! stored is behind the [`RowSink`] seam, so the path can be tested without Postgres.

pub mod after_commit;
pub mod decode;
mod inbound;
pub mod judge;
pub mod observe;
pub mod persist;
mod replay;
mod rows;
mod sink;
mod tally;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use portcullis_actors::TenantDirectory;
use portcullis_engine::TenantId;
use tokio_util::sync::CancellationToken;
use tracing::{instrument, warn};

pub use after_commit::AfterCommit;
pub use decode::{DecodeLimits, Decoder, SharedRegistry};
pub use inbound::Inbound;
pub use judge::{Judging, Observations};
pub use observe::{EventObserver, Observed};
pub use persist::Persist;
pub use replay::{ReplayError, Replayed};
pub use rows::{RowSet, WriteCounts};
pub use sink::{RowSink, SinkError};
pub use tally::Tally;

use crate::approvals::add_agent_approvals;
use crate::evidence::add_receipts;
use crate::retry::{Backoff, Cancelled};
use crate::telemetry::stats::Stats;

/// How many times a tenant's actor may stop with one batch in its mailbox before that tenant's
/// events of the batch are set aside as dead letters.
pub const STOPS_BEFORE_SETTING_ASIDE: usize = 3;

/// A batch whose rows are committed: what the after-commit steps see.
#[derive(Debug, Default)]
pub struct Committed {
    /// One per message of the batch, in order.
    pub sets: Vec<RowSet>,
    /// Rows newly stored (duplicates of a redelivery not counted).
    pub stored: WriteCounts,
}

/// The stages, wired: what every source feeds.
pub struct EventPath {
    decoder: Decoder,
    judging: Judging,
    persist: Persist,
    after_commit: Vec<Arc<dyn AfterCommit>>,
    /// Whether judged events get receipts (`evidence.enabled`).
    receipts: bool,
    /// How long approval requests opened by agents' events wait, when they are opened.
    agent_approvals: Option<chrono::Duration>,
    stats: Arc<Stats>,
}

impl EventPath {
    pub fn new(
        decoder: Decoder,
        directory: Arc<TenantDirectory>,
        sink: Arc<dyn RowSink>,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            decoder,
            judging: Judging::new(directory),
            persist: Persist::new(sink, stats.clone()),
            after_commit: Vec::new(),
            receipts: false,
            agent_approvals: None,
            stats,
        }
    }

    /// Has events' anomaly features and scores computed before policy judges them.
    pub fn with_observer(mut self, observer: Arc<dyn EventObserver>) -> Self {
        self.judging = self.judging.with_observer(observer);
        self
    }

    /// Counts each event's arrival in its unit's load and gives policy the unit's level.
    pub fn with_protection(mut self, board: Arc<portcullis_actors::ProtectionBoard>) -> Self {
        self.judging = self.judging.with_protection(board);
        self
    }

    /// Gives policy the external trust signals about each event's principal or agent.
    pub fn with_signals(mut self, board: Arc<portcullis_actors::SignalBoard>) -> Self {
        self.judging = self.judging.with_signals(board);
        self
    }

    /// Gives every decision a receipt in its tenant's log, written with it.
    pub fn with_receipts(mut self) -> Self {
        self.receipts = true;
        self
    }

    /// Agents' events that policy answers `require_approval` open requests waiting `pending`.
    pub fn with_agent_approvals(mut self, pending: chrono::Duration) -> Self {
        self.agent_approvals = Some(pending);
        self
    }

    /// Adds a step that sees every committed batch (stage 5).
    pub fn with_after_commit(mut self, step: Arc<dyn AfterCommit>) -> Self {
        self.after_commit.push(step);
        self
    }

    pub fn directory(&self) -> &Arc<TenantDirectory> {
        self.judging.directory()
    }

    /// Stages 1 to 3: decodes and judges `batch` once, then writes its rows until they commit.
    /// Returns `Cancelled` only on shutdown, with nothing acknowledged: the source redelivers.
    /// The caller acknowledges the batch, then hands the result to [`Self::after_commit`].
    #[instrument(name = "batch", skip_all, fields(messages = batch.len()))]
    pub async fn process(
        &self,
        batch: &[Inbound],
        cancel: &CancellationToken,
    ) -> Result<Committed, Cancelled> {
        let Some(first) = batch.first() else {
            return Ok(Committed::default());
        };
        let m = &self.stats.metrics;
        let source = first.origin.source().as_str();
        m.received_messages
            .with_label_values(&[source])
            .inc_by(batch.len() as u64);
        let mut sets = self.decode_and_judge(batch, cancel).await?;
        let stored = self.persist.persist(batch, &mut sets, cancel).await?;
        // Counted once the whole batch is committed, so a retried batch counts once.
        Tally::of(&sets).record(m);
        m.messages_committed
            .with_label_values(&[source])
            .inc_by(batch.len() as u64);
        let end_to_end = m.end_to_end_seconds.with_label_values(&[source]);
        for msg in batch {
            end_to_end.observe(msg.received.elapsed().as_secs_f64());
        }
        m.batch_messages
            .with_label_values(&[source])
            .observe(batch.len() as f64);
        Ok(Committed { sets, stored })
    }

    /// Stage 5: the committed batch's after-commit steps, once its source has acknowledged it.
    pub fn after_commit(&self, committed: &Committed) {
        for step in &self.after_commit {
            step.committed(&committed.sets);
        }
    }

    /// Stages 1 and 2. Judging is done again only if an actor stopped with events in its
    /// mailbox (they came back with no verdict, so nothing of them was kept). A tenant whose
    /// actor stops [`STOPS_BEFORE_SETTING_ASIDE`] times on one batch has its events of the batch
    /// set aside as dead letters, so that it cannot stall its source.
    async fn decode_and_judge(
        &self,
        batch: &[Inbound],
        cancel: &CancellationToken,
    ) -> Result<Vec<RowSet>, Cancelled> {
        let mut backoff = Backoff::for_writes();
        let mut stops: HashMap<TenantId, usize> = HashMap::new();
        let mut set_aside = HashSet::new();
        let mut observations = Observations::default();
        loop {
            let (events, mut sets) = self.decoder.decode(batch);
            match self
                .judging
                .judge(batch, events, &mut sets, &set_aside, &mut observations)
                .await
            {
                Ok(()) => {
                    let now = chrono::Utc::now();
                    if self.receipts {
                        add_receipts(&mut sets, now);
                    }
                    if let Some(pending) = self.agent_approvals {
                        add_agent_approvals(&mut sets, now, pending);
                    }
                    return Ok(sets);
                }
                Err(stopped) => {
                    self.stats.metrics.batch_retries.inc();
                    warn!(error = %stopped, messages = batch.len(), "batch not judged; judging it again");
                    let n = stops.entry(stopped.0.clone()).or_default();
                    *n += 1;
                    if *n >= STOPS_BEFORE_SETTING_ASIDE {
                        set_aside.insert(stopped.0);
                    }
                    backoff.wait(cancel).await?;
                }
            }
        }
    }
}
