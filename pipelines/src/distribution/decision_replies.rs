//! Decisions back to agents: the verdict on each of an agent's events is published on its
//! `{prefix}/{tenant}/agents/{agent}/decisions` topic (QoS 1) once the decision is committed.
//! Postgres holds the record; this is the agent's notice, handed on without holding up the
//! event path: past a bounded queue, notices are dropped and counted.

use std::sync::Arc;

use futures::StreamExt;
use portcullis_engine::approval::Verdict;
use portcullis_engine::decode::valid_agent_id;
use portcullis_engine::distribution::{agent_topic, AgentTopicKind, AGENT_PROTOCOL};
use portcullis_engine::event::Source;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::path::{AfterCommit, RowSet};
use crate::sinks::mqtt::MqttPublisher;
use crate::telemetry::stats::Stats;

/// Publishes in flight at once: the broker's acks pace us, not one round trip per notice.
const IN_FLIGHT: usize = 64;

/// A topic and its payload.
pub type Notice = (String, Vec<u8>);

/// The after-commit step; its queue is drained by [`run_decision_replies`].
pub struct DecisionReplies {
    prefix: String,
    tx: mpsc::Sender<Notice>,
    stats: Arc<Stats>,
    max_bytes: usize,
}

/// The step and the queue it fills, `capacity` notices deep; a notice over `max_bytes` is
/// dropped and counted (the broker, or our publisher, would refuse it).
pub fn decision_replies(
    prefix: String,
    capacity: usize,
    max_bytes: usize,
    stats: Arc<Stats>,
) -> (DecisionReplies, mpsc::Receiver<Notice>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (
        DecisionReplies {
            prefix,
            tx,
            stats,
            max_bytes,
        },
        rx,
    )
}

impl DecisionReplies {
    /// Where other notices to agents are queued (answers to their approval requests): the same
    /// queue, bound and publisher as verdicts.
    pub fn queue(&self) -> mpsc::Sender<Notice> {
        self.tx.clone()
    }
}

/// A batch redelivered after a crash is told again: agents may see a verdict twice, with the
/// same `decision_id`.
impl AfterCommit for DecisionReplies {
    fn committed(&self, sets: &[RowSet]) {
        for set in sets {
            for (event, d) in set.events.iter().zip(&set.decisions) {
                if event.source != Source::Mqtt {
                    continue;
                }
                // Device events carry their agent's id as the account, unless the tenant's
                // bundle masks it: then there is no one to tell (never a guess).
                if !valid_agent_id(&event.account) {
                    self.stats.metrics.agent_decisions_dropped.inc();
                    continue;
                }
                let topic = agent_topic(
                    &self.prefix,
                    &d.tenant_id,
                    &event.account,
                    AgentTopicKind::Decisions,
                );
                let approval = set
                    .agent_approvals
                    .iter()
                    .find(|a| a.request.decision_id == d.decision_id)
                    .and_then(|a| a.joined());
                let notice = json!({
                    "protocol": AGENT_PROTOCOL,
                    "type": "decision",
                    "event_id": event.event_id,
                    "decision_id": d.decision_id,
                    "allowed": d.allowed,
                    "outcome": Verdict::of(&d.result).as_str(),
                    "approval": approval,
                    "result": d.result,
                    "revision": d.bundle_revision,
                });
                let payload = serde_json::to_vec(&notice).expect("JSON values");
                if payload.len() > self.max_bytes || self.tx.try_send((topic, payload)).is_err() {
                    self.stats.metrics.agent_decisions_dropped.inc();
                }
            }
        }
    }
}

/// Publishes queued notices until `cancel` fires.
pub async fn run_decision_replies(
    rx: mpsc::Receiver<Notice>,
    publisher: MqttPublisher,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let notices = tokio_stream_of(rx);
    let publishing = notices.for_each_concurrent(IN_FLIGHT, |(topic, payload)| {
        let publisher = publisher.clone();
        async move {
            if let Err(e) = publisher.publish(topic.clone(), payload, false).await {
                warn!(%topic, error = %e, "a verdict could not be published to its agent (Postgres has it)");
            }
        }
    });
    tokio::select! {
        _ = publishing => {}
        _ = cancel.cancelled() => {}
    }
    Ok(())
}

fn tokio_stream_of<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
