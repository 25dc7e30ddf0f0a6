//! Mosquitto's dynamic security API: who may connect and what they may do, changed while the
//! broker runs by messages on `$CONTROL/dynamic-security/v1` (no password file to rewrite, no
//! reload). Done as the plugin's admin, `[mqtt] admin_username` (docs/operations.md): never
//! with the engine's own account, whose roles these commands may change (the plugin
//! disconnects a client whose roles change).

use std::time::Duration;

use portcullis_engine::distribution::{BrokerAccess, TopicAccess};
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, Packet, QoS};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::MqttConfig;

const CONTROL_TOPIC: &str = "$CONTROL/dynamic-security/v1";
const RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";

#[derive(Debug, thiserror::Error)]
pub enum BrokerAdminError {
    #[error("[mqtt] admin_username is not set: enrolling agents needs the broker's dynamic security admin (docs/operations.md)")]
    NoAdminAccount,
    #[error("the broker at {broker} refused the admin account ({code:?}): check [mqtt] admin_username and PORTCULLIS_MQTT__ADMIN_PASSWORD")]
    Refused {
        broker: String,
        code: ConnectReturnCode,
    },
    #[error("cannot reach the broker at {broker}: {reason}")]
    Unreachable { broker: String, reason: String },
    #[error("the broker does not let [mqtt] admin_username use {CONTROL_TOPIC}: it must be the dynamic security plugin's admin")]
    NotAdmin,
    #[error("the broker did not answer on {RESPONSE_TOPIC} within {0:?}: is Mosquitto's dynamic security plugin loaded (docs/operations.md)?")]
    NoAnswer(Duration),
    #[error("the broker refused {command}: {error}")]
    Command { command: String, error: String },
}

/// One command's answer: `Err` holds the plugin's error text (e.g. "Client not found").
pub type CommandOutcome = Result<Value, String>;

#[derive(Deserialize)]
struct Responses {
    responses: Vec<Response>,
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Value,
    #[serde(rename = "correlationData", default)]
    correlation: Option<String>,
}

/// Sends `commands` in one control message and returns each one's outcome, in order. Connects
/// with the engine's account for this call only: these changes are rare (an enrollment).
pub async fn control(
    cfg: &MqttConfig,
    commands: Vec<Value>,
    timeout: Duration,
) -> Result<Vec<CommandOutcome>, BrokerAdminError> {
    let Some(admin) = &cfg.admin_username else {
        return Err(BrokerAdminError::NoAdminAccount);
    };
    let broker = format!("{}:{}", cfg.host, cfg.port);
    let call = uuid::Uuid::new_v4().simple().to_string();
    let mut opts = cfg.options(format!("{}-admin-{}", cfg.client_id, &call[..8]));
    opts.set_credentials(admin, cfg.admin_password.as_deref().unwrap_or_default())
        .set_clean_session(true)
        .set_max_packet_size(4 * 1024 * 1024, 1024 * 1024);
    let (client, mut eventloop) = AsyncClient::new(opts, 8);
    let tagged: Vec<Value> = commands
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            c["correlationData"] = json!(format!("{call}-{i}"));
            c
        })
        .collect();
    let expected = tagged.len();
    let payload = serde_json::to_vec(&json!({ "commands": tagged })).expect("JSON values");
    client
        .subscribe(RESPONSE_TOPIC, QoS::AtLeastOnce)
        .await
        .map_err(|e| BrokerAdminError::Unreachable {
            broker: broker.clone(),
            reason: e.to_string(),
        })?;

    let exchange = async {
        loop {
            let event = eventloop.poll().await.map_err(|e| match e {
                ConnectionError::ConnectionRefused(code) => BrokerAdminError::Refused {
                    broker: broker.clone(),
                    code,
                },
                other => BrokerAdminError::Unreachable {
                    broker: broker.clone(),
                    reason: other.to_string(),
                },
            })?;
            match event {
                Event::Incoming(Packet::SubAck(ack)) => {
                    let granted = ack
                        .return_codes
                        .iter()
                        .all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_)));
                    if !granted {
                        return Err(BrokerAdminError::NotAdmin);
                    }
                    client
                        .publish(CONTROL_TOPIC, QoS::AtLeastOnce, false, payload.clone())
                        .await
                        .map_err(|e| BrokerAdminError::Unreachable {
                            broker: broker.clone(),
                            reason: e.to_string(),
                        })?;
                }
                Event::Incoming(Packet::Publish(p)) if p.topic == RESPONSE_TOPIC => {
                    let Ok(parsed) = serde_json::from_slice::<Responses>(&p.payload) else {
                        continue;
                    };
                    // Another admin's answers come here too: ours carry our call's tag.
                    let ours = parsed.responses.iter().any(|r| {
                        r.correlation
                            .as_deref()
                            .is_some_and(|c| c.starts_with(&call))
                    });
                    if !ours {
                        continue;
                    }
                    let mut outcomes = vec![Err("no answer".to_owned()); expected];
                    for r in parsed.responses {
                        let index = r
                            .correlation
                            .as_deref()
                            .and_then(|c| c.strip_prefix(&call))
                            .and_then(|c| c.strip_prefix('-'))
                            .and_then(|i| i.parse::<usize>().ok())
                            .filter(|i| *i < expected);
                        if let Some(i) = index {
                            outcomes[i] = match r.error {
                                Some(error) => Err(error),
                                None => Ok(r.data),
                            };
                        }
                    }
                    return Ok(outcomes);
                }
                _ => {}
            }
        }
    };
    let result = tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(BrokerAdminError::NoAnswer(timeout)));
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
    result
}

/// Like [`control`], but every command must succeed, except for errors `tolerated` says are
/// fine (e.g. "not found" when deleting what may not exist).
pub async fn control_all(
    cfg: &MqttConfig,
    commands: Vec<Value>,
    timeout: Duration,
    tolerated: impl Fn(&str, &str) -> bool,
) -> Result<(), BrokerAdminError> {
    let names: Vec<String> = commands
        .iter()
        .map(|c| c["command"].as_str().unwrap_or("?").to_owned())
        .collect();
    for (command, outcome) in names
        .into_iter()
        .zip(control(cfg, commands, timeout).await?)
    {
        if let Err(error) = outcome {
            if !tolerated(&command, &error) {
                return Err(BrokerAdminError::Command { command, error });
            }
        }
    }
    Ok(())
}

/// The plugin's ACL entries for a role's accesses: publishing is `publishClientSend`;
/// subscribing is `subscribePattern` and receiving what matches `publishClientReceive`
/// (`portcullis broker setup` makes the plugin deny all three by default, so a role grants
/// exactly these, and a client that took another's id anonymously would receive nothing).
pub fn role_acls(access: &BrokerAccess) -> Vec<Value> {
    access
        .topics
        .iter()
        .flat_map(|t| match t {
            TopicAccess::Publish(topic) => {
                vec![json!({"acltype": "publishClientSend", "topic": topic, "allow": true})]
            }
            TopicAccess::Subscribe(topic) => vec![
                json!({"acltype": "subscribePattern", "topic": topic, "allow": true}),
                json!({"acltype": "publishClientReceive", "topic": topic, "allow": true}),
            ],
        })
        .collect()
}
