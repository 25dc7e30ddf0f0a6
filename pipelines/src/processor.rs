//! The path every message takes, whatever its source: decode, judge with the tenant's actor,
//! write all resulting rows in one transaction. Retried as a whole until it commits, so a message
//! is acknowledged only once everything it produced is durable.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::join_all;
use portcullis_actors::{Evaluate, TenantDirectory};
use portcullis_engine::decode::{decode_cloudtrail, decode_device, Rejected};
use portcullis_engine::policy::event_document;
use portcullis_engine::{DeadLetter, Event, Origin, TenantId, TenantRegistry};
use tokio_util::sync::CancellationToken;
use tracing::{instrument, warn, Instrument};

use crate::metrics::Metrics;
use crate::policy_service::{DecisionBus, StreamedDecision};
use crate::postgres::{refused_for_content, PgWriter, RowBatch, WriteCounts};
use crate::stats::Stats;

/// One message as it arrived, kept until its rows are committed.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub origin: Origin,
    pub payload: Vec<u8>,
    /// When it arrived, for end-to-end latency.
    pub received: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("tenant actor for {tenant} did not answer: {message}")]
    Actor { tenant: String, message: String },
    #[error("writing to Postgres failed: {0}")]
    Write(#[from] sqlx::Error),
}

#[derive(Debug, thiserror::Error)]
#[error("shutting down before the batch was committed; it will be redelivered")]
pub struct Cancelled;

/// What replaying one dead letter did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Its events were judged and stored (`new_rows` of them were not stored already).
    Stored { events: usize, new_rows: u64 },
    /// It still cannot be processed, for this reason.
    StillFailing(String),
}

/// Limits and names the decoders need.
#[derive(Debug, Clone)]
pub struct DecodeLimits {
    pub kafka_max_bytes: usize,
    pub mqtt_max_bytes: usize,
    pub mqtt_prefix: String,
}

pub type SharedRegistry = Arc<RwLock<Arc<TenantRegistry>>>;

pub struct Processor {
    directory: Arc<TenantDirectory>,
    registry: SharedRegistry,
    writer: PgWriter,
    limits: DecodeLimits,
    stats: Arc<Stats>,
    bus: Arc<DecisionBus>,
}

impl Processor {
    pub fn new(
        directory: Arc<TenantDirectory>,
        registry: SharedRegistry,
        writer: PgWriter,
        limits: DecodeLimits,
        stats: Arc<Stats>,
        bus: Arc<DecisionBus>,
    ) -> Self {
        Self {
            directory,
            registry,
            writer,
            limits,
            stats,
            bus,
        }
    }

    /// Processes `batch` until its rows are committed, retrying with backoff on failures that may
    /// pass (Postgres down, an actor restarting). Returns `Cancelled` only on shutdown, in which
    /// case nothing was acknowledged and the source will redeliver.
    pub async fn process_until_committed(
        &self,
        batch: &[Inbound],
        cancel: &CancellationToken,
    ) -> Result<WriteCounts, Cancelled> {
        let Some(first) = batch.first() else {
            return Ok(WriteCounts::default());
        };
        let m = &self.stats.metrics;
        let source = first.origin.source().as_str();
        m.received_messages
            .with_label_values(&[source])
            .inc_by(batch.len() as u64);
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.process(batch).await {
                Ok(tally) => {
                    self.stats.postgres_ok.store(true, Ordering::Relaxed);
                    // Counted once the whole batch is committed, so a retried batch counts once.
                    tally.record(m);
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
                    return Ok(tally.stored);
                }
                Err(e) => {
                    if matches!(e, ProcessError::Write(_)) {
                        self.stats.postgres_ok.store(false, Ordering::Relaxed);
                    }
                    m.batch_retries.inc();
                    warn!(error = %e, messages = batch.len(), retry_in_ms = backoff.as_millis() as u64,
                          "batch not committed; retrying");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(Cancelled),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// One attempt: decode, judge, write. A write refused for what the rows contain, rather than
    /// because Postgres is unavailable, would be refused on every retry and stall the source; the
    /// batch is then taken apart so that only the offending message is set aside, as a dead
    /// letter that carries the database's reason.
    pub async fn process(&self, batch: &[Inbound]) -> Result<Tally, ProcessError> {
        match self.process_once(batch).await {
            Err(ProcessError::Write(e)) if refused_for_content(&e) => {
                warn!(error = %e, messages = batch.len(),
                      "Postgres refused rows of this batch; writing its messages one at a time");
                let mut total = Tally::default();
                for msg in batch {
                    let tally = match self.process_once(std::slice::from_ref(msg)).await {
                        Err(ProcessError::Write(e)) if refused_for_content(&e) => {
                            self.set_aside(msg, &e).await?
                        }
                        other => other?,
                    };
                    total.merge(tally);
                }
                Ok(total)
            }
            other => other,
        }
    }

    /// Stores a message whose rows Postgres refuses as a dead letter saying why.
    async fn set_aside(&self, msg: &Inbound, e: &sqlx::Error) -> Result<Tally, ProcessError> {
        let reason = format!("its rows could not be stored in Postgres: {e}");
        let dead = DeadLetter::new(msg.origin.clone(), None, &msg.payload, reason);
        let rows = RowBatch {
            dead_letters: vec![dead],
            ..Default::default()
        };
        let stored = self.writer.write(&rows).await?;
        Ok(Tally::of(&rows, stored))
    }

    /// Re-drives one dead letter: if its payload now decodes and is judged, its rows are stored
    /// and the dead letter marked resolved in one transaction; otherwise the new reason is kept.
    pub async fn replay(
        &self,
        dead_letter_id: &str,
        msg: &Inbound,
    ) -> Result<Replayed, ProcessError> {
        let (events, mut dead) = self.decode(std::slice::from_ref(msg));
        let mut rows = self.judge(events, &mut dead).await?;
        let still_failing = |reason: String| async move {
            crate::postgres::note_replay_failure(self.writer.pool(), dead_letter_id, &reason)
                .await?;
            Ok(Replayed::StillFailing(reason))
        };
        if !dead.is_empty() {
            let reason = dead
                .iter()
                .map(|d| d.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            return still_failing(reason).await;
        }
        rows.resolves.push(dead_letter_id.to_owned());
        match self.writer.write(&rows).await {
            Ok(counts) => Ok(Replayed::Stored {
                events: rows.events.len(),
                new_rows: counts.events,
            }),
            // Refused for its content again (e.g. a message set aside by `process`): record it and
            // let the replay go on with the next dead letter.
            Err(e) if refused_for_content(&e) => {
                still_failing(format!("its rows could not be stored in Postgres: {e}")).await
            }
            Err(e) => Err(e.into()),
        }
    }

    #[instrument(name = "batch", skip_all, fields(messages = batch.len(), events, dead_letters))]
    async fn process_once(&self, batch: &[Inbound]) -> Result<Tally, ProcessError> {
        let (events, mut dead) = self.decode(batch);
        let mut rows = self.judge(events, &mut dead).await?;
        rows.dead_letters = dead;
        let span = tracing::Span::current();
        span.record("events", rows.events.len());
        span.record("dead_letters", rows.dead_letters.len());
        let started = Instant::now();
        let counts = self
            .writer
            .write(&rows)
            .instrument(tracing::info_span!("postgres.write"))
            .await?;
        let m = &self.stats.metrics;
        // Rows are facts of the database, counted as they commit (a batch retried after a
        // partial commit does not store them twice); everything else waits for the whole batch.
        m.write_seconds.observe(started.elapsed().as_secs_f64());
        m.events_stored.inc_by(counts.events);
        if self.bus.has_subscribers() {
            self.stream(&rows);
        }
        Ok(Tally::of(&rows, counts))
    }

    /// Shows committed decisions to decision-stream subscribers. A batch redelivered after a
    /// crash is shown again: the stream is at least once; `decision_id` tells repeats apart.
    fn stream(&self, rows: &RowBatch) {
        for (event, d) in rows.events.iter().zip(&rows.decisions) {
            if !self.bus.wants(&d.tenant_id) {
                continue;
            }
            // Masked already, by the bundle that judged it (TenantActor).
            let input = event_document(event);
            // `wants` was asked above: send directly rather than through `publish`, which
            // would ask again.
            let streamed = StreamedDecision {
                event_id: &event.event_id,
                decision_id: d.decision_id,
                tenant: &d.tenant_id,
                decided_at: Utc::now(),
                source: event.source.as_str(),
                path: &d.rule_path,
                revision: &d.bundle_revision,
                result: Some(&d.result).filter(|r| !r.is_null()),
                input: Some(&input),
                eval_micros: d.eval_micros,
            };
            self.bus.send(&d.tenant_id, streamed.to_message().into());
        }
    }

    fn decode(&self, batch: &[Inbound]) -> (Vec<(Event, Origin)>, Vec<DeadLetter>) {
        let registry = self
            .registry
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let mut events = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        let mut reject = |origin: &Origin, r: Rejected| {
            let mut d =
                DeadLetter::new(origin.clone(), r.record_index, &r.raw, r.error.to_string());
            d.tenant_hint = r.tenant_hint;
            dead.push(d);
        };
        for msg in batch {
            match &msg.origin {
                Origin::Kafka { .. } => {
                    for decoded in
                        decode_cloudtrail(&msg.payload, &registry, self.limits.kafka_max_bytes)
                    {
                        match decoded {
                            Ok(e) => events.push((e, msg.origin.clone())),
                            Err(r) => reject(&msg.origin, r),
                        }
                    }
                }
                Origin::Mqtt { topic } => match decode_device(
                    &self.limits.mqtt_prefix,
                    topic,
                    &msg.payload,
                    &registry,
                    self.limits.mqtt_max_bytes,
                ) {
                    Ok(e) => events.push((e, msg.origin.clone())),
                    Err(r) => reject(&msg.origin, r),
                },
            }
        }
        (events, dead)
    }

    /// Sends each tenant's events to its actor (tenants in parallel, each tenant in order).
    #[instrument(skip_all, fields(events = events.len()))]
    async fn judge(
        &self,
        events: Vec<(Event, Origin)>,
        dead: &mut Vec<DeadLetter>,
    ) -> Result<RowBatch, ProcessError> {
        let mut by_tenant: HashMap<TenantId, (Vec<Event>, Vec<Origin>)> = HashMap::new();
        for (e, o) in events {
            let slot = by_tenant.entry(e.tenant_id.clone()).or_default();
            slot.0.push(e);
            slot.1.push(o);
        }
        let now = Utc::now();
        let mut pending = Vec::new();
        for (tenant, (events, origins)) in by_tenant {
            match self.directory.get(&tenant) {
                Ok(addr) => pending.push(async move {
                    let res = addr.send(Evaluate { events, now }).await;
                    (tenant, origins, res)
                }),
                Err(e) => {
                    for (ev, origin) in events.into_iter().zip(origins) {
                        dead.push(event_dead_letter(&ev, origin, e.to_string()));
                    }
                }
            }
        }
        let mut rows = RowBatch::default();
        for (tenant, origins, res) in join_all(pending).await {
            let judged = res.map_err(|e| ProcessError::Actor {
                tenant: tenant.to_string(),
                message: e.to_string(),
            })?;
            for ((event, outcome), origin) in judged.into_iter().zip(origins) {
                match outcome {
                    Ok(decision) => {
                        rows.decisions.push(decision);
                        rows.events.push(event);
                    }
                    Err(reason) => dead.push(event_dead_letter(
                        &event,
                        origin,
                        format!("policy evaluation failed: {reason}"),
                    )),
                }
            }
        }
        Ok(rows)
    }
}

/// What a committed batch did, counted per label so that the metrics are touched once per label
/// and batch rather than once per event.
#[derive(Debug, Default)]
pub struct Tally {
    events: HashMap<(&'static str, TenantId), u64>,
    decisions: HashMap<(TenantId, &'static str), u64>,
    dead_letters: HashMap<&'static str, u64>,
    /// Rows newly inserted (duplicates from redelivery excluded).
    pub stored: WriteCounts,
}

impl Tally {
    fn of(rows: &RowBatch, stored: WriteCounts) -> Self {
        let mut t = Tally {
            stored,
            ..Default::default()
        };
        for e in &rows.events {
            *t.events
                .entry((e.source.as_str(), e.tenant_id.clone()))
                .or_default() += 1;
        }
        for d in &rows.decisions {
            let outcome = if d.allowed { "allow" } else { "deny" };
            *t.decisions
                .entry((d.tenant_id.clone(), outcome))
                .or_default() += 1;
        }
        for d in &rows.dead_letters {
            *t.dead_letters
                .entry(d.origin.source().as_str())
                .or_default() += 1;
        }
        t
    }

    fn merge(&mut self, other: Tally) {
        for (k, n) in other.events {
            *self.events.entry(k).or_default() += n;
        }
        for (k, n) in other.decisions {
            *self.decisions.entry(k).or_default() += n;
        }
        for (k, n) in other.dead_letters {
            *self.dead_letters.entry(k).or_default() += n;
        }
        self.stored.add(other.stored);
    }

    fn record(&self, m: &Metrics) {
        for ((source, tenant), n) in &self.events {
            m.events
                .with_label_values(&[*source, tenant.as_str()])
                .inc_by(*n);
        }
        for ((tenant, outcome), n) in &self.decisions {
            m.decisions
                .with_label_values(&[tenant.as_str(), *outcome])
                .inc_by(*n);
        }
        for (source, n) in &self.dead_letters {
            m.dead_letters.with_label_values(&[*source]).inc_by(*n);
        }
    }
}

/// A decoded event that could not be judged: kept whole, with the tenant named.
fn event_dead_letter(event: &Event, origin: Origin, reason: String) -> DeadLetter {
    let payload = serde_json::to_vec(&event.raw).unwrap_or_default();
    let mut d = DeadLetter::new(origin, None, &payload, reason)
        .with_tenant_hint(event.tenant_id.to_string());
    // One message may hold several events; the event id keeps their dead letters apart.
    d.id = format!("{}:event:{}", d.id, event.event_id);
    d
}
