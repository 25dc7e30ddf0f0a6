//! Agent events over MQTT: QoS 1, persistent session, manual acks sent only after the rows are
//! committed, so the broker redelivers anything we had not finished when we stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portcullis_engine::decode::device_topic_filter;
use portcullis_engine::Origin;
use rumqttc::{AsyncClient, Event, Outgoing, Packet, Publish, QoS};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::MqttConfig;
use crate::path::{EventPath, Inbound};
use crate::sources::BatchLimits;
use crate::telemetry::stats::Stats;

/// Largest packet the client accepts: the MQTT maximum. A larger limit on our side than the
/// broker's means an oversized message always reaches us and becomes a dead letter; a smaller one
/// would make rumqttc drop the connection and the broker redeliver the message forever.
const MAX_INCOMING_PACKET: usize = 268_435_460;

/// What a received message costs in memory besides its payload and topic (the `Publish`, its
/// place in the channel and the batch), charged against `mqtt.qos0_buffer_bytes`.
const MESSAGE_OVERHEAD: usize = 192;

/// A message on its way from the event loop to its batch.
struct Received {
    publish: Publish,
    at: Instant,
    /// The connection it arrived on (counted from 1). An ack names a packet id, which is only
    /// the broker's name for this message on that connection.
    connection: u64,
    /// QoS 0 only: its share of `mqtt.qos0_buffer_bytes`, given back when the batch is dropped.
    qos0_permit: Option<OwnedSemaphorePermit>,
}

pub async fn run_source(
    cfg: MqttConfig,
    path: Arc<EventPath>,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) -> Result<(), rumqttc::ClientError> {
    let mut opts = cfg.options(&cfg.client_id);
    opts.set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(MAX_INCOMING_PACKET, 1024 * 1024);
    // Room for a whole batch of acks plus subscriptions, so acking never waits on the event loop.
    let (client, mut eventloop) = AsyncClient::new(opts, cfg.batch_max_messages * 2 + 16);
    let filter = match &cfg.shared_group {
        Some(group) => format!("$share/{group}/{}", device_topic_filter(&cfg.topic_prefix)),
        None => device_topic_filter(&cfg.topic_prefix),
    };
    // Unbounded on purpose: the poller must never wait, or it stops draining our acks from the
    // request queue and stops sending keep-alives (a deadlock seen under load). The channel is
    // bounded all the same. QoS 1 by the broker: we ack only after commit, so at most the
    // broker's in-flight window (`max_inflight_messages`) of unacknowledged messages is in it.
    // QoS 0 by us: each message holds permits for its bytes until its batch is done, and one
    // that finds the budget spent is dropped and counted, since nothing would pace it.
    let (tx, mut rx) = mpsc::unbounded_channel::<Received>();
    let qos0_budget = Arc::new(Semaphore::new(cfg.qos0_buffer_bytes.min(u32::MAX as usize)));

    // The event loop must be polled continuously: it sends our acks and keeps the connection.
    // It has its own token so that it outlives the batch loop long enough to flush the last acks.
    let poll_cancel = CancellationToken::new();
    let stop_poller = poll_cancel.clone();
    let poll_client = client.clone();
    let poll_stats = stats.clone();
    let poll_filter = filter.clone();
    let budget_bytes = cfg.qos0_buffer_bytes.min(u32::MAX as usize);
    let connection = Arc::new(AtomicU64::new(0));
    let poll_connection = connection.clone();
    let mut poller = tokio::spawn(async move {
        let mut dropped_since_warn = 0u64;
        let mut last_warn = Instant::now() - Duration::from_secs(60);
        loop {
            let ev = tokio::select! {
                _ = poll_cancel.cancelled() => break,
                ev = eventloop.poll() => ev,
            };
            match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let permit = if p.qos == QoS::AtMostOnce {
                        // Charged for what it holds in memory, not just its payload (an empty
                        // message is not free). One larger than the whole budget takes all of
                        // it, so it still passes when nothing else is waiting.
                        let size = p.payload.len() + p.topic.len() + MESSAGE_OVERHEAD;
                        let want = size.min(budget_bytes) as u32;
                        match qos0_budget.clone().try_acquire_many_owned(want) {
                            Ok(permit) => Some(permit),
                            Err(_) => {
                                poll_stats.metrics.mqtt_qos0_dropped.inc();
                                dropped_since_warn += 1;
                                if last_warn.elapsed() >= Duration::from_secs(10) {
                                    warn!(
                                        dropped = dropped_since_warn,
                                        "mqtt QoS 0 buffer full; dropping QoS 0 messages (agents should publish with QoS 1)"
                                    );
                                    dropped_since_warn = 0;
                                    last_warn = Instant::now();
                                }
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    let received = Received {
                        publish: p,
                        at: Instant::now(),
                        connection: poll_connection.load(Ordering::Relaxed),
                        qos0_permit: permit,
                    };
                    if tx.send(received).is_err() {
                        break;
                    }
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    poll_connection.fetch_add(1, Ordering::Relaxed);
                    info!(session_present = ack.session_present, "mqtt connected");
                    // Without a stored session the broker forgot our subscription: make it again.
                    if !ack.session_present || !poll_stats.mqtt_subscribed.load(Ordering::Relaxed) {
                        if let Err(e) = poll_client.try_subscribe(&poll_filter, QoS::AtLeastOnce) {
                            warn!(error = %e, "mqtt subscribe request failed");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    poll_stats.mqtt_subscribed.store(true, Ordering::Relaxed);
                }
                // Our own DISCONNECT went out, after every ack queued before it: done.
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => {
                    poll_stats.mqtt_subscribed.store(false, Ordering::Relaxed);
                    warn!(error = %e, "mqtt connection error; reconnecting");
                    tokio::select! {
                        _ = poll_cancel.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    });
    info!(filter = %filter, client_id = %cfg.client_id, "mqtt source started");

    let limits = BatchLimits {
        max_messages: cfg.batch_max_messages,
        max_bytes: cfg.batch_max_bytes,
        linger: Duration::from_millis(cfg.batch_linger_ms),
    };
    let mut batch_in_hand_qos0 = 0u64;
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            p = rx.recv() => match p { Some(p) => p, None => break },
        };
        let mut more = futures::stream::poll_fn(|cx| rx.poll_recv(cx).map(|r| r.map(Some)));
        let batch = limits
            .fill(first, |r| r.publish.payload.len(), &mut more)
            .await;
        let inbound: Vec<Inbound> = batch
            .iter()
            .map(|r| Inbound {
                origin: Origin::Mqtt {
                    topic: r.publish.topic.clone(),
                },
                payload: r.publish.payload.to_vec(),
                received: r.at.into_std(),
            })
            .collect();
        let Ok(committed) = path.process(&inbound, &cancel).await else {
            batch_in_hand_qos0 = batch.iter().filter(|r| r.qos0_permit.is_some()).count() as u64;
            break;
        };
        let now_connected = connection.load(Ordering::Relaxed);
        for r in &batch {
            // A message from an earlier connection is not acked: after a reconnect the broker
            // sends it again (its session kept it), and its old packet id may name another
            // message by now. Its rows are stored; the copy sent again is stored once.
            if r.connection != now_connected {
                continue;
            }
            if let Err(e) = client.ack(&r.publish).await {
                warn!(error = %e, "mqtt ack not sent; the broker will redeliver (rows are idempotent)");
            }
        }
        path.after_commit(&committed);
    }
    // QoS 0 messages still held when we stop are lost (the broker will not send them again):
    // count them with the dropped ones, so that no loss goes unrecorded.
    let mut lost_qos0 = batch_in_hand_qos0;
    while let Ok(r) = rx.try_recv() {
        lost_qos0 += u64::from(r.qos0_permit.is_some());
    }
    if lost_qos0 > 0 {
        stats.metrics.mqtt_qos0_dropped.inc_by(lost_qos0);
        warn!(
            lost_qos0,
            "QoS 0 messages not committed before shutdown were dropped"
        );
    }
    // The DISCONNECT is queued behind the last acks, so the event loop sends them first and then
    // stops. If that takes too long, an unsent ack only means a redelivery, which the rows absorb.
    let _ = client.disconnect().await;
    if tokio::time::timeout(Duration::from_secs(2), &mut poller)
        .await
        .is_err()
    {
        stop_poller.cancel();
        let _ = poller.await;
    }
    info!("mqtt source stopped");
    Ok(())
}
