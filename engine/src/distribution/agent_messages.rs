//! The agent protocol's messages (docs/agent-protocol.md): what an agent says (hello, status)
//! and what the engine answers (config). JSON with a protocol version; unknown fields are
//! ignored so either side may add some, and an unknown protocol version is refused with what
//! is spoken here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::envelope::SignedEnvelope;
use super::segment::SegmentId;

/// The protocol version this engine speaks.
pub const AGENT_PROTOCOL: u32 = 1;
/// Most groups one agent may name.
pub const MAX_GROUPS: usize = 100;
/// Most characters of a group name (as `segment_rules.group_name`).
pub const MAX_GROUP_LEN: usize = 200;

/// One tenant's agent: what an agent-session actor and an agent's topics belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentKey {
    pub tenant: crate::TenantId,
    pub agent: String,
}

impl std::fmt::Display for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tenant, self.agent)
    }
}

/// An agent asking for its segments' policy: at bootstrap (`applied` empty) and when it has
/// seen a version jump (`applied` says what it has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub groups: Vec<String>,
    /// Per segment, the version applied now.
    #[serde(default)]
    pub applied: BTreeMap<SegmentId, u64>,
}

/// An agent saying whether it is online and what it applies; its MQTT last will is the
/// offline one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub protocol: u32,
    pub online: bool,
    #[serde(default)]
    pub applied: BTreeMap<SegmentId, u64>,
}

/// The engine's answer to a hello: for each of the agent's segments, the versions after the
/// one it applies (only the latest when it applies none), in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigReply {
    pub protocol: u32,
    pub segments: Vec<SegmentVersions>,
    /// Set instead of segments when the hello was refused (why, for the agent's log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ConfigReply {
    /// The answer to a hello that cannot be served.
    pub fn refusal(why: impl Into<String>) -> Self {
        Self {
            protocol: AGENT_PROTOCOL,
            segments: Vec::new(),
            error: Some(why.into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentVersions {
    pub segment_id: SegmentId,
    /// The segment's latest version (0: none published yet).
    pub latest: u64,
    pub versions: Vec<SignedEnvelope>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentMessageError {
    #[error("not a valid message: {0}")]
    Json(String),
    #[error("protocol {found} is not spoken here (this engine speaks {AGENT_PROTOCOL})")]
    Protocol { found: u32 },
    #[error("{0} groups named; at most {MAX_GROUPS} are allowed")]
    TooManyGroups(usize),
    #[error("group names are 1 to {MAX_GROUP_LEN} characters without control characters")]
    BadGroup,
}

fn check_protocol(found: u32) -> Result<(), AgentMessageError> {
    if found == AGENT_PROTOCOL {
        Ok(())
    } else {
        Err(AgentMessageError::Protocol { found })
    }
}

impl Hello {
    pub fn parse(bytes: &[u8]) -> Result<Self, AgentMessageError> {
        let hello: Hello =
            serde_json::from_slice(bytes).map_err(|e| AgentMessageError::Json(e.to_string()))?;
        check_protocol(hello.protocol)?;
        check_groups(&hello.groups)?;
        Ok(hello)
    }
}

/// The limits on an agent's groups, as it says them in a hello or as it is enrolled with.
pub fn check_groups(groups: &[String]) -> Result<(), AgentMessageError> {
    if groups.len() > MAX_GROUPS {
        return Err(AgentMessageError::TooManyGroups(groups.len()));
    }
    let bad = |g: &String| {
        g.is_empty() || g.chars().count() > MAX_GROUP_LEN || g.chars().any(char::is_control)
    };
    if groups.iter().any(bad) {
        return Err(AgentMessageError::BadGroup);
    }
    Ok(())
}

impl AgentStatus {
    pub fn parse(bytes: &[u8]) -> Result<Self, AgentMessageError> {
        let status: AgentStatus =
            serde_json::from_slice(bytes).map_err(|e| AgentMessageError::Json(e.to_string()))?;
        check_protocol(status.protocol)?;
        Ok(status)
    }
}

impl ConfigReply {
    pub fn parse(bytes: &[u8]) -> Result<Self, AgentMessageError> {
        let reply: ConfigReply =
            serde_json::from_slice(bytes).map_err(|e| AgentMessageError::Json(e.to_string()))?;
        check_protocol(reply.protocol)?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_reads_with_or_without_applied_versions_and_ignores_unknown_fields() {
        let h =
            Hello::parse(br#"{"protocol": 1, "groups": ["HR", "laptops"], "x": true}"#).unwrap();
        assert_eq!(h.groups, ["HR", "laptops"]);
        assert!(h.applied.is_empty());
        let h = Hello::parse(br#"{"protocol": 1, "groups": [], "applied": {"hr": 3}}"#).unwrap();
        assert_eq!(h.applied[&SegmentId::parse("hr").unwrap()], 3);
    }

    #[test]
    fn hostile_or_foreign_hellos_are_refused_with_the_reason() {
        let refused = |b: &[u8]| Hello::parse(b).unwrap_err();
        assert_eq!(
            refused(br#"{"protocol": 2, "groups": []}"#),
            AgentMessageError::Protocol { found: 2 }
        );
        assert!(matches!(refused(b"not json"), AgentMessageError::Json(_)));
        assert!(matches!(
            refused(br#"{"groups": []}"#),
            AgentMessageError::Json(_)
        ));
        assert!(matches!(
            refused(br#"{"protocol": 1, "groups": [], "applied": {"HR/#": 1}}"#),
            AgentMessageError::Json(_)
        ));
        assert!(matches!(
            refused(br#"{"protocol": 1, "groups": [], "applied": {"hr": -1}}"#),
            AgentMessageError::Json(_)
        ));
        assert_eq!(
            refused(br#"{"protocol": 1, "groups": [""]}"#),
            AgentMessageError::BadGroup
        );
        assert_eq!(
            refused(br#"{"protocol": 1, "groups": ["a\u0000b"]}"#),
            AgentMessageError::BadGroup
        );
        let many = serde_json::json!({"protocol": 1, "groups": (0..101).map(|i| i.to_string()).collect::<Vec<_>>()});
        assert_eq!(
            refused(&serde_json::to_vec(&many).unwrap()),
            AgentMessageError::TooManyGroups(101)
        );
    }

    #[test]
    fn status_and_config_round_trip() {
        let s = AgentStatus::parse(br#"{"protocol": 1, "online": false}"#).unwrap();
        assert!(!s.online);
        let reply = ConfigReply {
            protocol: AGENT_PROTOCOL,
            segments: vec![SegmentVersions {
                segment_id: SegmentId::parse("hr").unwrap(),
                latest: 0,
                versions: vec![],
            }],
            error: None,
        };
        let bytes = serde_json::to_vec(&reply).unwrap();
        assert_eq!(ConfigReply::parse(&bytes).unwrap(), reply);
    }
}
