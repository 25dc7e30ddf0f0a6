//! `[mqtt]`: the agent event source.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    /// Fixed client id: with a persistent session the broker queues events while we are away.
    pub client_id: String,
    /// Agents publish on `{topic_prefix}/{tenant}/agents/{agent}/events`.
    pub topic_prefix: String,
    /// Payloads larger than this become dead letters.
    pub max_payload_bytes: usize,
    /// With several engine processes: the name of an MQTT shared subscription (`$share/{group}/…`)
    /// they all join, so the broker splits agents' events between them. Unset: one engine.
    pub shared_group: Option<String>,
    pub keep_alive_secs: u64,
    /// Most messages judged and written in one batch.
    pub batch_max_messages: usize,
    /// A batch closes once its payloads reach this many bytes.
    pub batch_max_bytes: usize,
    /// How long a batch waits to fill before it is written anyway.
    pub batch_linger_ms: u64,
    /// Payload bytes of QoS 0 messages held between the broker and their commit. QoS 0 is not
    /// paced by the broker (nothing is acknowledged), so past this budget they are dropped and
    /// counted in `portcullis_mqtt_qos0_dropped_total`. QoS 1 never is: the broker's in-flight
    /// window bounds it.
    pub qos0_buffer_bytes: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "portcullis-engine".into(),
            topic_prefix: "portcullis".into(),
            max_payload_bytes: 256 * 1024,
            shared_group: None,
            keep_alive_secs: 30,
            batch_max_messages: 500,
            batch_max_bytes: 8 * 1024 * 1024,
            batch_linger_ms: 20,
            qos0_buffer_bytes: 16 * 1024 * 1024,
        }
    }
}
