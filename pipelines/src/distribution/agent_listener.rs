//! Listens to agents' hello and status topics and hands each message to its agent's session
//! actor: one agent's messages in order, different agents in parallel. Messages are
//! acknowledged in the order they came, once handled (or refused); a hello whose answer could
//! not be sent is logged, and the agent asks again (docs/agent-protocol.md).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesOrdered, StreamExt};
use portcullis_actors::{AgentSession, EntityDirectory, FromAgent};
use portcullis_engine::distribution::{
    agent_topic_filter, parse_agent_topic, AgentKey, AgentStatus, AgentTopicKind, Hello,
};
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::agent_store::PgAgentStore;
use crate::config::MqttConfig;
use crate::retry::Backoff;

/// The agent sessions of a running engine.
pub type AgentDirectory = EntityDirectory<AgentSession<PgAgentStore>>;

/// Largest hello or status read; a larger one is refused (they are a few hundred bytes).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Messages handled at once (across agents) before the oldest must finish.
const WINDOW: usize = 256;

/// What a message asks of its session; `None`: not for a session (dropped with a warning).
fn to_session(prefix: &str, p: &Publish) -> Option<(AgentKey, FromAgent)> {
    let Some((tenant, agent, kind)) = parse_agent_topic(prefix, &p.topic) else {
        warn!(topic = %p.topic.chars().take(256).collect::<String>(), "message on an agent topic that does not parse; dropped");
        return None;
    };
    let key = AgentKey { tenant, agent };
    if p.payload.len() > MAX_MESSAGE_BYTES {
        let why = format!(
            "the message is {} bytes; at most {MAX_MESSAGE_BYTES} are read",
            p.payload.len()
        );
        return Some((key, FromAgent::Refused(why)));
    }
    let msg = match kind {
        AgentTopicKind::Hello => match Hello::parse(&p.payload) {
            Ok(h) => FromAgent::Hello(h),
            Err(e) => FromAgent::Refused(format!("hello refused: {e}")),
        },
        AgentTopicKind::Status => match AgentStatus::parse(&p.payload) {
            Ok(status) => FromAgent::Status {
                status,
                replayed: p.retain,
            },
            Err(e) => {
                warn!(agent = %key, error = %e, "agent status refused");
                return None;
            }
        },
        _ => return None,
    };
    Some((key, msg))
}

/// Runs until `cancel` fires.
pub async fn run_agent_listener(
    cfg: MqttConfig,
    sessions: Arc<AgentDirectory>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut opts = cfg.options(format!("{}-agents", cfg.client_id));
    opts.set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(
            cfg.max_payload_bytes.max(MAX_MESSAGE_BYTES) + 1024,
            256 * 1024,
        );
    let (client, mut eventloop) = AsyncClient::new(opts, WINDOW * 2 + 16);
    let filters: Vec<String> = [AgentTopicKind::Hello, AgentTopicKind::Status]
        .into_iter()
        .map(|k| {
            let f = agent_topic_filter(&cfg.topic_prefix, k);
            match &cfg.shared_group {
                Some(group) => format!("$share/{group}/{f}"),
                None => f,
            }
        })
        .collect();

    // The event loop is polled without pause (it sends our acks and keeps the connection);
    // what arrives is handed over with the connection it came on, since an ack is valid only
    // on that connection.
    let connection = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<(Publish, u64)>();
    let poller = {
        let (client, cancel, connection, filters) = (
            client.clone(),
            cancel.clone(),
            connection.clone(),
            filters.clone(),
        );
        tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
            loop {
                let ev = tokio::select! {
                    _ = cancel.cancelled() => return,
                    ev = eventloop.poll() => ev,
                };
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connection.fetch_add(1, Ordering::Relaxed);
                        backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
                        for f in &filters {
                            let _ = client.try_subscribe(f.clone(), QoS::AtLeastOnce);
                        }
                        info!("listening to agents' hello and status topics");
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let at = connection.load(Ordering::Relaxed);
                        if tx.send((p, at)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        warn!(error = %e, "agent listener lost the broker; reconnecting");
                        if backoff.wait(&cancel).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
    };

    let mut handling = FuturesOrdered::new();
    let mut waiting: VecDeque<(Publish, u64)> = VecDeque::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            received = rx.recv(), if handling.len() < WINDOW => {
                let Some((p, at)) = received else { break };
                let sessions = sessions.clone();
                let prefix = cfg.topic_prefix.clone();
                let job = to_session(&prefix, &p);
                waiting.push_back((p, at));
                handling.push_back(async move {
                    let Some((key, msg)) = job else { return };
                    match sessions.send(&key, msg).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => warn!(agent = %key, error = %e, "agent message not handled; the agent will ask again"),
                        Err(e) => warn!(agent = %key, error = %e, "agent session unavailable"),
                    }
                });
            }
            Some(()) = handling.next(), if !handling.is_empty() => {
                let (p, at) = waiting.pop_front().expect("one waiting per job");
                // After a reconnection the broker redelivers it; an ack now could hit another
                // message that has the same packet id on the new connection.
                if at == connection.load(Ordering::Relaxed) {
                    let _ = client.ack(&p).await;
                }
            }
        }
    }
    poller.abort();
    let _ = client.try_disconnect();
    Ok(())
}
