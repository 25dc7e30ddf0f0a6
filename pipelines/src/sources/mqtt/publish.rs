//! Publishing a set of messages with QoS 1 and waiting until the broker has acknowledged each.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, QoS};

use crate::config::MqttConfig;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("mqtt publish request failed: {0}")]
    Client(#[from] rumqttc::ClientError),
    #[error("mqtt connection failed while publishing: {0}")]
    Connection(#[from] rumqttc::ConnectionError),
    #[error("mqtt publisher task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Publishes every `(topic, payload)` with QoS 1 from a clean session named `client_id`, and
/// returns once the broker has sent a PUBACK for each.
pub async fn publish_all(
    cfg: &MqttConfig,
    client_id: &str,
    messages: Vec<(String, Vec<u8>)>,
) -> Result<(), PublishError> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut opts = cfg.options(client_id);
    // Only acks come back; outgoing may be as large as the broker accepts (16 MiB in our set-up),
    // so oversized payloads can be sent to test that they are dead-lettered.
    opts.set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(64 * 1024, 16 * 1024 * 1024);
    let (client, mut eventloop) = AsyncClient::new(opts, 256);
    let expected = messages.len();
    // The event loop must run while we publish: it is what drains the request queue.
    let poller = tokio::spawn(async move {
        let mut acked = 0;
        while acked < expected {
            if let Event::Incoming(Packet::PubAck(_)) = eventloop.poll().await? {
                acked += 1;
            }
        }
        Ok::<_, rumqttc::ConnectionError>(eventloop)
    });
    for (topic, payload) in messages {
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await?;
    }
    let mut eventloop = poller.await??;
    client.disconnect().await?;
    // Let the DISCONNECT go out.
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
    Ok(())
}
