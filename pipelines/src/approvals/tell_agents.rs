//! Telling agents the answer to the requests their events opened: every engine with MQTT follows
//! the NOTIFY an answer or expiry sends and publishes
//! `{"type": "approval", "approval_id": …, "status": …}` on the agent's `decisions` topic (QoS 1,
//! so an agent away receives it when it returns). With several engines an agent may hear an
//! answer more than once: it keys on the approval id.
//!
//! A notification sent while the listener is not connected is lost, so on every connection the
//! answers since the last one told are read again. `answered_at` does not follow commit order
//! (an expiry is dated at its expiry, committed by a sweep a little later; other engines'
//! clocks differ), so that reading reaches back a margin and skips what was told; one that
//! fails is tried again until it succeeds.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use portcullis_engine::distribution::{agent_topic, AgentTopicKind, AGENT_PROTOCOL};
use portcullis_engine::TenantId;
use serde_json::{json, Value as Json};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::answered::{follow_answers, Heard};
use super::{answered_for_agents_since, get, ApprovalRow};
use crate::distribution::Notice as AgentNotice;
use crate::telemetry::stats::Stats;

/// How far before the newest answer told a catch-up reads again, at least (and two sweep
/// intervals: an expiry is dated up to one interval before its commit).
const CATCH_UP_MARGIN: Duration = Duration::minutes(2);
/// Answers read by one query of a catch-up; a full page is followed by the next.
const CATCH_UP_PAGE: i64 = 1000;
/// How soon a catch-up that failed is tried again.
const CATCH_UP_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// What an agent is told of its answered request.
pub fn approval_notice(row: &ApprovalRow) -> Json {
    json!({
        "protocol": AGENT_PROTOCOL,
        "type": "approval",
        "approval_id": row.approval_id,
        "status": row.status,
        "decision_id": row.decision_id,
        "rule": row.rule,
        "action": row.action,
        "resource": row.resource,
        "answered_at": row.answered_at,
        "answered_by": row.answered_by,
        "note": row.note,
        "grant_until": row.grant_until,
    })
}

/// Where the answers stand: which were told, up to when.
struct Told {
    newest: DateTime<Utc>,
    margin: Duration,
    /// Answers told within the margin of the newest: a catch-up does not tell them again.
    recent: HashMap<Uuid, DateTime<Utc>>,
    /// Pruned again once this many are kept (twice what the last pruning kept).
    prune_at: usize,
}

impl Told {
    fn is_new(&self, row: &ApprovalRow) -> bool {
        !self.recent.contains_key(&row.approval_id)
    }

    fn mark(&mut self, id: Uuid, at: DateTime<Utc>) {
        self.newest = self.newest.max(at);
        self.recent.insert(id, at);
        if self.recent.len() >= self.prune_at {
            let horizon = self.newest - self.margin;
            self.recent.retain(|_, at| *at > horizon);
            self.prune_at = (self.recent.len() * 2).max(1024);
        }
    }
}

/// Every agent's answer after the margin before the newest told, page by page.
async fn catch_up(pool: &PgPool, told: &Told) -> Result<Vec<ApprovalRow>, sqlx::Error> {
    let mut since = told.newest - told.margin;
    let mut rows = Vec::new();
    loop {
        let page = answered_for_agents_since(pool, since, CATCH_UP_PAGE).await?;
        let full = page.len() as i64 == CATCH_UP_PAGE;
        if let Some(at) = page.last().and_then(|r| r.answered_at) {
            since = at;
        }
        rows.extend(page);
        if !full {
            return Ok(rows);
        }
    }
}

/// Publishes answers to agents through `queue` (the verdicts' queue) until `cancel` fires.
pub async fn tell_agents(
    pool: PgPool,
    prefix: String,
    queue: mpsc::Sender<AgentNotice>,
    max_bytes: usize,
    sweep_interval: std::time::Duration,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) {
    let (listener, mut rx) = follow_answers(pool.clone(), cancel.clone());
    // Answers from before this engine started are not told again; those between its start and
    // its first connection are (the first catch-up).
    let sweeps = Duration::from_std(sweep_interval * 2).unwrap_or(CATCH_UP_MARGIN);
    let mut told = Told {
        newest: Utc::now(),
        margin: CATCH_UP_MARGIN.max(sweeps),
        recent: HashMap::new(),
        prune_at: 1024,
    };
    let mut owed = false;
    let mut retry = tokio::time::interval(CATCH_UP_RETRY);
    loop {
        let heard = tokio::select! {
            heard = rx.recv() => match heard {
                Some(heard) => heard,
                None => break,
            },
            _ = retry.tick(), if owed => Heard::Connected,
            _ = cancel.cancelled() => break,
        };
        let rows = match heard {
            Heard::Connected => catch_up(&pool, &told).await,
            Heard::Answered(id) => get(&pool, id).await.map(|r| r.into_iter().collect()),
        };
        let rows = match (rows, &heard) {
            (Ok(rows), Heard::Connected) => {
                owed = false;
                rows
            }
            (Ok(rows), _) => rows,
            (Err(e), _) => {
                tracing::warn!(error = %e, "cannot read an answered approval to tell its agent; trying again");
                // A missed answer is found by the next catch-up.
                owed = true;
                continue;
            }
        };
        for row in rows {
            let (Some(agent), Some(at)) = (&row.agent_id, row.answered_at) else {
                continue;
            };
            if !told.is_new(&row) {
                continue;
            }
            let Ok(tenant) = TenantId::parse(&row.tenant_id) else {
                continue;
            };
            told.mark(row.approval_id, at);
            let topic = agent_topic(&prefix, &tenant, agent, AgentTopicKind::Decisions);
            let payload = serde_json::to_vec(&approval_notice(&row)).expect("JSON values");
            let why = if payload.len() > max_bytes {
                "it is too large"
            } else if queue.try_send((topic, payload)).is_err() {
                "the queue of notices is full"
            } else {
                continue;
            };
            stats.metrics.agent_decisions_dropped.inc();
            tracing::warn!(approval = %row.approval_id, agent, why, "an agent could not be told its approval's answer; it can read GET /v1/approvals/{{id}}");
        }
    }
    listener.abort();
}
