//! Telling agents the answer to the requests their events opened: every engine with MQTT follows
//! the NOTIFY an answer or expiry sends and publishes
//! `{"type": "approval", "approval_id": …, "status": …}` on the agent's `decisions` topic (QoS 1,
//! so an agent away receives it when it returns). With several engines an agent may hear an
//! answer more than once: it keys on the approval id.
//!
//! A notification sent while the listener is not connected is lost, so on every connection the
//! answers since the last one told are read again. `answered_at` does not follow commit order
//! (an expiry is dated at its expiry, committed by a sweep a little later; other engines'
//! clocks differ), so that reading reaches back [`CATCH_UP_MARGIN`] and skips what was told.

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

/// How far before the newest answer told a catch-up reads again.
const CATCH_UP_MARGIN: Duration = Duration::minutes(2);
/// Most answers one catch-up tells.
const CATCH_UP_LIMIT: i64 = 10_000;

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
    /// Answers told within the margin of the newest: a catch-up does not tell them again.
    recent: HashMap<Uuid, DateTime<Utc>>,
}

impl Told {
    fn is_new(&self, row: &ApprovalRow) -> bool {
        !self.recent.contains_key(&row.approval_id)
    }

    fn mark(&mut self, id: Uuid, at: DateTime<Utc>) {
        self.newest = self.newest.max(at);
        self.recent.insert(id, at);
        let horizon = self.newest - CATCH_UP_MARGIN;
        if self.recent.len() > 1024 {
            self.recent.retain(|_, at| *at > horizon);
        }
    }
}

/// Publishes answers to agents through `queue` (the verdicts' queue) until `cancel` fires.
pub async fn tell_agents(
    pool: PgPool,
    prefix: String,
    queue: mpsc::Sender<AgentNotice>,
    max_bytes: usize,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) {
    let (listener, mut rx) = follow_answers(pool.clone(), cancel.clone());
    // Answers from before this engine started are not told again; those between its start and
    // its first connection are (the first catch-up).
    let mut told = Told {
        newest: Utc::now(),
        recent: HashMap::new(),
    };
    while let Some(heard) = tokio::select! {
        heard = rx.recv() => heard,
        _ = cancel.cancelled() => None,
    } {
        let rows = match heard {
            Heard::Connected => {
                let since = told.newest - CATCH_UP_MARGIN;
                answered_for_agents_since(&pool, since, CATCH_UP_LIMIT).await
            }
            Heard::Answered(id) => get(&pool, id).await.map(|r| r.into_iter().collect()),
        };
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read an answered approval to tell its agent");
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
