//! Discarding a persistent MQTT session: what a benchmark or a test leaves behind for a
//! client id it will not use again.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet};

use crate::config::MqttConfig;

/// Connects as `client_id` with a clean session (the broker drops what it kept for that id and
/// its queued messages), then disconnects. Best effort: a broker that is away is left alone.
pub async fn discard_session(cfg: &MqttConfig, client_id: &str) {
    let mut opts = cfg.options(client_id);
    opts.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(opts, 4);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while !matches!(
            eventloop.poll().await,
            Ok(Event::Incoming(Packet::ConnAck(_))) | Err(_)
        ) {}
    })
    .await;
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
}
