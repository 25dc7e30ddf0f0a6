//! One long-lived MQTT connection for what the engine sends to agents, where each publish
//! resolves once the broker has acknowledged it (QoS 1 PUBACK).
//!
//! rumqttc does not return a publish's packet id, but it numbers publishes in the order they
//! are requested and reports each as `Outgoing::Publish(pkid)` when written: waiters queue in
//! request order and take the next id reported. That pairing holds only within one client, so
//! after any connection error, and after a publish timed out, the client is dropped and a new
//! one made (clean session): every publish not yet acknowledged fails, nothing is resent behind
//! our back, and nothing of the old connection can arrive after the caller was told it failed.
//! Callers publish again; receivers tolerate the repeat (segment versions are idempotent).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::MqttConfig;
use crate::retry::Backoff;

/// Most publishes requested and not yet acknowledged; more wait their turn.
const MAX_OUTSTANDING: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishFailed {
    #[error("the broker at {0} is unreachable or dropped the connection: {1}")]
    Disconnected(String, String),
    #[error("the broker did not acknowledge within {0:?}")]
    Timeout(Duration),
    #[error("the publisher has stopped (shutting down)")]
    Stopped,
    #[error("invalid publish: {0}")]
    Invalid(String),
}

type Waiter = oneshot::Sender<Result<(), PublishFailed>>;

struct Request {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
    done: Waiter,
}

/// A handle to the publishing connection; cheap to clone.
#[derive(Clone)]
pub struct MqttPublisher {
    requests: mpsc::Sender<Request>,
    /// Asks for the connection to be dropped and made anew; answered once it is.
    resets: mpsc::Sender<oneshot::Sender<()>>,
    connected: Arc<AtomicBool>,
    ack_timeout: Duration,
}

impl MqttPublisher {
    /// Connects as `client_id` (clean session) and keeps the connection until `cancel` fires.
    /// Must be called inside a tokio runtime.
    pub fn start(
        cfg: &MqttConfig,
        client_id: &str,
        max_payload_bytes: usize,
        ack_timeout: Duration,
        cancel: CancellationToken,
    ) -> Self {
        let mut opts = cfg.options(client_id);
        opts.set_clean_session(true)
            .set_max_packet_size(64 * 1024, max_payload_bytes + 64 * 1024);
        let broker = format!("{}:{}", cfg.host, cfg.port);
        let (requests, rx) = mpsc::channel(MAX_OUTSTANDING);
        let (resets, reset_rx) = mpsc::channel(8);
        let connected = Arc::new(AtomicBool::new(false));
        tokio::spawn(drive(opts, broker, rx, reset_rx, connected.clone(), cancel));
        Self {
            requests,
            resets,
            connected,
            ack_timeout,
        }
    }

    /// Whether the connection is up now (a send would likely go through).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Publishes with QoS 1 and waits for the broker's acknowledgement. On a timeout the
    /// connection is dropped before this returns, so the publish cannot still arrive later.
    pub async fn publish(
        &self,
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<(), PublishFailed> {
        let (done, acked) = oneshot::channel();
        let request = Request {
            topic,
            payload,
            retain,
            done,
        };
        let wait = async {
            self.requests
                .send(request)
                .await
                .map_err(|_| PublishFailed::Stopped)?;
            acked.await.map_err(|_| PublishFailed::Stopped)?
        };
        match tokio::time::timeout(self.ack_timeout, wait).await {
            Ok(result) => result,
            Err(_) => {
                let (reset, was_reset) = oneshot::channel();
                if self.resets.send(reset).await.is_ok() {
                    let _ = was_reset.await;
                }
                Err(PublishFailed::Timeout(self.ack_timeout))
            }
        }
    }
}

/// Fails every waiter with `why`.
fn fail_all(
    unassigned: &mut VecDeque<Waiter>,
    awaiting: &mut HashMap<u16, Waiter>,
    why: &PublishFailed,
) {
    for waiter in unassigned.drain(..).chain(awaiting.drain().map(|(_, w)| w)) {
        let _ = waiter.send(Err(why.clone()));
    }
}

/// A new client and event loop: what the old one had in flight is forgotten.
fn connect(opts: &MqttOptions) -> (AsyncClient, EventLoop) {
    // The client's queue holds at most what we allow outstanding: `try_publish` never finds
    // it full, and the event loop is never starved while we hand it work.
    AsyncClient::new(opts.clone(), MAX_OUTSTANDING + 8)
}

/// The connection's task: polls the event loop, hands requests to the client while connected,
/// and matches acknowledgements to their waiters.
async fn drive(
    opts: MqttOptions,
    broker: String,
    mut requests: mpsc::Receiver<Request>,
    mut resets: mpsc::Receiver<oneshot::Sender<()>>,
    connected: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    let (mut client, mut eventloop) = connect(&opts);
    let mut unassigned: VecDeque<Waiter> = VecDeque::new();
    let mut awaiting: HashMap<u16, Waiter> = HashMap::new();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let up = connected.load(Ordering::Relaxed);
        let room = unassigned.len() + awaiting.len() < MAX_OUTSTANDING;
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(reset) = resets.recv() => {
                connected.store(false, Ordering::Relaxed);
                let why = PublishFailed::Disconnected(broker.clone(), "reset after a publish timed out".into());
                fail_all(&mut unassigned, &mut awaiting, &why);
                (client, eventloop) = connect(&opts);
                let _ = reset.send(());
            }
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected.store(true, Ordering::Relaxed);
                    backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    if let Some(waiter) = unassigned.pop_front() {
                        awaiting.insert(pkid, waiter);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(waiter) = awaiting.remove(&ack.pkid) {
                        let _ = waiter.send(Ok(()));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    connected.store(false, Ordering::Relaxed);
                    fail_all(&mut unassigned, &mut awaiting, &PublishFailed::Disconnected(broker.clone(), e.to_string()));
                    tracing::warn!(%broker, error = %e, "agent publisher lost the broker; reconnecting");
                    // A fresh client: events the old one still holds cannot be paired with
                    // the next publishes.
                    (client, eventloop) = connect(&opts);
                    if backoff.wait(&cancel).await.is_err() {
                        break;
                    }
                }
            },
            request = requests.recv(), if up && room => {
                let Some(r) = request else { break };
                if r.done.is_closed() {
                    continue; // its caller gave up before it was sent
                }
                match client.try_publish(r.topic, QoS::AtLeastOnce, r.retain, r.payload) {
                    Ok(()) => unassigned.push_back(r.done),
                    Err(e) => {
                        let _ = r.done.send(Err(PublishFailed::Invalid(e.to_string())));
                    }
                }
            }
        }
    }
    connected.store(false, Ordering::Relaxed);
    fail_all(&mut unassigned, &mut awaiting, &PublishFailed::Stopped);
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
}
