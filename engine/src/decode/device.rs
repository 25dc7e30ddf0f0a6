//! Device events published by edge agents on `{prefix}/{tenant}/agents/{agent}/events`.

use serde_json::Value;

use super::error::json_type_name;
use super::fields::{opt_str, parse_json, parse_time, reject_nul, req_str};
use super::{DecodeError, Rejected};
use crate::{ids, Event, EventKind, Source, TenantId, TenantRegistry};

/// The MQTT subscription filter matching every agent's event topic under `prefix`.
pub fn device_topic_filter(prefix: &str) -> String {
    format!("{prefix}/+/agents/+/events")
}

/// A parsed device event topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTopic {
    pub tenant: TenantId,
    pub agent: String,
}

impl DeviceTopic {
    pub fn parse(prefix: &str, topic: &str) -> Result<Self, DecodeError> {
        let bad = || DecodeError::BadTopic {
            topic: topic.chars().take(256).collect(),
            expected: format!("{prefix}/{{tenant}}/agents/{{agent}}/events"),
        };
        let rest = topic
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [tenant, "agents", agent, "events"] = parts.as_slice() else {
            return Err(bad());
        };
        let tenant = TenantId::parse(tenant)?;
        if !valid_agent_id(agent) {
            return Err(DecodeError::BadAgentId(agent.chars().take(128).collect()));
        }
        Ok(Self {
            tenant,
            agent: (*agent).to_owned(),
        })
    }
}

/// An agent id: 1 to 128 of `A-Z a-z 0-9 _ - .`, starting with a letter or digit (a single
/// topic level, safe in a client id and a broker username).
pub fn valid_agent_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Decodes one MQTT message from an agent.
///
/// Payload: a JSON object with `action` and `time` (RFC 3339), and optionally `id` (the agent's
/// message id), `user`, `resource` (string or object with `id`/`type`), `source_ip`.
/// Without `id`, the event id is a hash of topic and payload. `time` is required because it is
/// part of the row's key: a receive time would differ on redelivery and store the event twice.
pub fn decode_device(
    prefix: &str,
    topic: &str,
    payload: &[u8],
    registry: &TenantRegistry,
    max_bytes: usize,
) -> Result<Event, Rejected> {
    let parsed = DeviceTopic::parse(prefix, topic).map_err(|e| Rejected::whole(payload, e))?;
    let hint = parsed.tenant.to_string();
    decode_payload(&parsed, topic, payload, registry, max_bytes).map_err(|error| Rejected {
        tenant_hint: Some(hint),
        ..Rejected::whole(payload, error)
    })
}

fn decode_payload(
    topic: &DeviceTopic,
    raw_topic: &str,
    payload: &[u8],
    registry: &TenantRegistry,
    max_bytes: usize,
) -> Result<Event, DecodeError> {
    if !registry.contains(&topic.tenant) {
        return Err(DecodeError::UnknownTenant(topic.tenant.to_string()));
    }
    let root = parse_json(payload, max_bytes)?;
    let Value::Object(obj) = &root else {
        return Err(DecodeError::NotAnObject(json_type_name(&root)));
    };
    reject_nul(&root)?;
    let action = req_str(obj, "action")?.to_owned();
    let event_time = parse_time("time", req_str(obj, "time")?)?;
    // Message ids are only unique per agent, so the agent id is part of the event id.
    let event_id = match opt_str(obj, "id")? {
        Some(id) => format!("{}/{id}", topic.agent),
        None => {
            // Hash the parsed document, not the raw bytes: a dead letter keeps the parsed form,
            // and its replay must produce the same id as the live message would have.
            let mut keyed = raw_topic.as_bytes().to_vec();
            keyed.push(0);
            keyed.extend_from_slice(&serde_json::to_vec(&root).unwrap_or_default());
            ids::content_hash(&keyed)
        }
    };
    let principal = opt_str(obj, "user")?.unwrap_or(&topic.agent).to_owned();
    let resource = match obj.get("resource") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(r)) => opt_str(r, "id")?.or(opt_str(r, "type")?).map(str::to_owned),
        Some(other) => {
            return Err(DecodeError::WrongType {
                field: "resource",
                expected: "a string or an object",
                found: json_type_name(other),
            })
        }
    };
    let source_ip = opt_str(obj, "source_ip")?.map(str::to_owned);
    Ok(Event {
        event_id,
        tenant_id: topic.tenant.clone(),
        source: Source::Mqtt,
        kind: EventKind::Device,
        event_time,
        principal,
        action,
        service: "agent".to_owned(),
        resource,
        source_ip,
        account: topic.agent.clone(),
        raw: root,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LIMIT: usize = 1 << 16;

    fn registry() -> TenantRegistry {
        let mut r = TenantRegistry::new();
        r.add_tenant(TenantId::parse("acme").unwrap());
        r
    }

    fn decode(topic: &str, payload: &[u8]) -> Result<Event, Rejected> {
        decode_device("portcullis", topic, payload, &registry(), LIMIT)
    }

    const T: &str = r#""time":"2026-11-22T12:00:00Z""#;

    const TOPIC: &str = "portcullis/acme/agents/laptop-7/events";

    #[test]
    fn decodes_an_abac_style_event() {
        let payload = json!({
            "id": "m-1", "time": "2026-11-22T11:59:00Z", "user": "user_123", "action": "read",
            "resource": {"type": "sensor_data", "region": "EU"}
        });
        let e = decode(TOPIC, &serde_json::to_vec(&payload).unwrap()).unwrap();
        assert_eq!(e.event_id, "laptop-7/m-1");
        assert_eq!(e.tenant_id.as_str(), "acme");
        assert_eq!(e.account, "laptop-7");
        assert_eq!(e.principal, "user_123");
        assert_eq!(e.action, "read");
        assert_eq!(e.resource.as_deref(), Some("sensor_data"));
        assert_eq!(e.source, Source::Mqtt);
        assert_eq!(e.event_time.to_rfc3339(), "2026-11-22T11:59:00+00:00");
        assert_eq!(e.raw, payload);
    }

    #[test]
    fn defaults_principal_and_hashes_the_id() {
        let payload = format!(r#"{{"action":"usb_insert",{T}}}"#);
        let e = decode(TOPIC, payload.as_bytes()).unwrap();
        assert_eq!(e.event_time.to_rfc3339(), "2026-11-22T12:00:00+00:00");
        assert_eq!(e.principal, "laptop-7");
        assert_eq!(e.event_id.len(), 64);
        let again = decode(TOPIC, payload.as_bytes()).unwrap();
        assert_eq!(again.event_id, e.event_id, "a redelivery keeps its id");
        let other_agent =
            decode("portcullis/acme/agents/laptop-8/events", payload.as_bytes()).unwrap();
        assert_ne!(
            e.event_id, other_agent.event_id,
            "same payload, two agents: two events"
        );
    }

    #[test]
    fn time_is_required_so_a_redelivery_keeps_its_key() {
        let err = decode(TOPIC, br#"{"id":"1","action":"read"}"#).unwrap_err();
        assert_eq!(err.error, DecodeError::MissingField("time"));
        let bad = decode(TOPIC, br#"{"action":"read","time":"noon"}"#).unwrap_err();
        assert!(matches!(
            bad.error,
            DecodeError::BadTime { field: "time", .. }
        ));
    }

    #[test]
    fn refuses_bad_topics_and_hostile_ids() {
        for topic in [
            "portcullis/acme/agents/laptop/status",
            "other/acme/agents/laptop/events",
            "portcullis/acme/agents/events",
            "portcullisx/acme/agents/a/events",
        ] {
            let err = decode(topic, br#"{"action":"x"}"#).unwrap_err().error;
            assert!(
                matches!(err, DecodeError::BadTopic { .. }),
                "{topic}: {err}"
            );
        }
        let err = decode("portcullis/Ac..me/agents/a/events", br#"{"action":"x"}"#).unwrap_err();
        assert!(matches!(err.error, DecodeError::BadTenant(_)));
        let err = decode("portcullis/acme/agents/-a/events", br#"{"action":"x"}"#).unwrap_err();
        assert!(matches!(err.error, DecodeError::BadAgentId(_)));
    }

    #[test]
    fn refuses_unknown_tenants_and_malformed_payloads() {
        let err = decode("portcullis/initech/agents/a/events", br#"{"action":"x"}"#).unwrap_err();
        assert_eq!(err.error, DecodeError::UnknownTenant("initech".into()));
        assert_eq!(err.tenant_hint.as_deref(), Some("initech"));
        assert!(matches!(
            decode(TOPIC, b"garbage").unwrap_err().error,
            DecodeError::InvalidJson(_)
        ));
        assert_eq!(
            decode(TOPIC, b"{}").unwrap_err().error,
            DecodeError::MissingField("action")
        );
        assert_eq!(
            decode(TOPIC, b"\"x\"").unwrap_err().error,
            DecodeError::NotAnObject("a string")
        );
        assert!(matches!(
            decode(
                TOPIC,
                format!(r#"{{"action":"x","resource":[1],{T}}}"#).as_bytes()
            )
            .unwrap_err()
            .error,
            DecodeError::WrongType {
                field: "resource",
                ..
            }
        ));
        let big = format!(r#"{{"action":"{}"}}"#, "a".repeat(LIMIT));
        assert!(matches!(
            decode(TOPIC, big.as_bytes()).unwrap_err().error,
            DecodeError::TooLarge { .. }
        ));
    }

    #[test]
    fn filter_matches_the_documented_topic() {
        assert_eq!(
            device_topic_filter("portcullis"),
            "portcullis/+/agents/+/events"
        );
    }
}
