//! `[mqtt]`: the agent event source.

use std::time::Duration;

use rumqttc::MqttOptions;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    /// The engine's broker account, when the broker asks for one (docs/operations.md, "Agent
    /// identity on the broker"). Give the password through `PORTCULLIS_MQTT__PASSWORD`
    /// rather than in a file others can read.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The broker's dynamic security admin, used only to enroll and revoke agents and by
    /// `portcullis broker setup` (`PORTCULLIS_MQTT__ADMIN_PASSWORD` for the password).
    pub admin_username: Option<String>,
    pub admin_password: Option<String>,
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
            username: None,
            password: None,
            admin_username: None,
            admin_password: None,
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

impl MqttConfig {
    /// Connection options for one of the engine's clients: the broker, the engine's account
    /// and the keep-alive; callers add session and packet settings.
    pub fn options(&self, client_id: impl Into<String>) -> MqttOptions {
        let mut opts = MqttOptions::new(client_id, &self.host, self.port);
        opts.set_keep_alive(Duration::from_secs(self.keep_alive_secs.max(5)));
        if let Some(user) = &self.username {
            opts.set_credentials(user, self.password.as_deref().unwrap_or_default());
        }
        opts
    }
}

/// Never prints the password (configs end up in logs and panics).
impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("enabled", &self.enabled)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("admin_username", &self.admin_username)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .field("client_id", &self.client_id)
            .field("topic_prefix", &self.topic_prefix)
            .field("shared_group", &self.shared_group)
            .finish_non_exhaustive()
    }
}
