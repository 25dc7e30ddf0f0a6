//! Telling agents the answer to the requests their events opened: every engine with MQTT follows
//! the NOTIFY an answer or expiry sends and publishes
//! `{"type": "approval", "approval_id": …, "status": …}` on the agent's `decisions` topic (QoS 1,
//! so an agent away receives it when it returns). With several engines an agent may hear an
//! answer more than once: it keys on the approval id.

use chrono::{DateTime, Utc};
use portcullis_engine::distribution::{agent_topic, AgentTopicKind, AGENT_PROTOCOL};
use portcullis_engine::TenantId;
use serde_json::{json, Value as Json};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{get, ApprovalRow, APPROVALS_CHANNEL};
use crate::distribution::Notice as AgentNotice;
use crate::sinks::postgres::notifications::{follow, Notice};

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

/// Requests of agents answered after `since`, oldest first: what a listener that was away
/// may have missed.
async fn answered_since(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> Result<Vec<ApprovalRow>, sqlx::Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT approval_id FROM approvals
         WHERE source = 'agent' AND answered_at > $1 ORDER BY answered_at LIMIT 10000",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = get(pool, id).await? {
            rows.push(row);
        }
    }
    Ok(rows)
}

enum Heard {
    /// The listener (re)connected: answers since the last one told may have been missed.
    Connected,
    Answered(Uuid),
}

/// Publishes answers to agents through `queue` (the verdicts' queue) until `cancel` fires.
pub async fn tell_agents(
    pool: PgPool,
    prefix: String,
    queue: mpsc::Sender<AgentNotice>,
    max_bytes: usize,
    cancel: CancellationToken,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Heard>();
    let listener = tokio::spawn(follow(
        pool.clone(),
        APPROVALS_CHANNEL,
        cancel.clone(),
        move |notice| match notice {
            Notice::Connected => tx.send(Heard::Connected).is_ok(),
            Notice::Payload(p) => match Uuid::parse_str(&p) {
                Ok(id) => tx.send(Heard::Answered(id)).is_ok(),
                Err(_) => true,
            },
        },
    ));
    // Answers before this engine started are not told again.
    let mut told_until = Utc::now();
    let mut first = true;
    while let Some(heard) = tokio::select! {
        heard = rx.recv() => heard,
        _ = cancel.cancelled() => None,
    } {
        let rows = match heard {
            Heard::Connected if first => {
                first = false;
                continue;
            }
            Heard::Connected => answered_since(&pool, told_until).await,
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
            let Ok(tenant) = TenantId::parse(&row.tenant_id) else {
                continue;
            };
            told_until = told_until.max(at);
            let topic = agent_topic(&prefix, &tenant, agent, AgentTopicKind::Decisions);
            let payload = serde_json::to_vec(&approval_notice(&row)).expect("JSON values");
            if payload.len() > max_bytes || queue.try_send((topic, payload)).is_err() {
                tracing::warn!(approval = %row.approval_id, agent, "an agent could not be told its approval's answer (the queue is full); it can ask GET /v1/approvals/{{id}}");
            }
        }
    }
    listener.abort();
}
