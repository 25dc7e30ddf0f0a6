//! MQTT topics of the agent protocol (docs/agent-protocol.md). `prefix` is the engine's
//! `mqtt.topic_prefix`; tenant and segment ids are valid topic levels by construction.

use super::segment::SegmentKey;
use crate::decode::valid_agent_id;
use crate::TenantId;

/// What an agent's own topic carries: `{prefix}/{tenant}/agents/{agent}/{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentTopicKind {
    /// agent → engine: bootstrap and catch-up requests.
    Hello,
    /// engine → agent: the answer to a hello.
    Config,
    /// agent → engine, retained: online, applied versions; offline by last will.
    Status,
    /// agent → engine: device events (docs/mqtt.md).
    Events,
    /// engine → agent: verdicts on its events.
    Decisions,
}

impl AgentTopicKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Config => "config",
            Self::Status => "status",
            Self::Events => "events",
            Self::Decisions => "decisions",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Hello,
            Self::Config,
            Self::Status,
            Self::Events,
            Self::Decisions,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One agent's topic of a kind.
pub fn agent_topic(prefix: &str, tenant: &TenantId, agent: &str, kind: AgentTopicKind) -> String {
    format!("{prefix}/{tenant}/agents/{agent}/{}", kind.as_str())
}

/// The filter matching every agent's topic of a kind, for the engine to subscribe to.
pub fn agent_topic_filter(prefix: &str, kind: AgentTopicKind) -> String {
    format!("{prefix}/+/agents/+/{}", kind.as_str())
}

/// The tenant, agent id and kind of an agent topic; `None` for anything else (a hostile or
/// malformed topic, another prefix).
pub fn parse_agent_topic(prefix: &str, topic: &str) -> Option<(TenantId, String, AgentTopicKind)> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [tenant, "agents", agent, kind] = parts.as_slice() else {
        return None;
    };
    let tenant = TenantId::parse(tenant).ok()?;
    if !valid_agent_id(agent) {
        return None;
    }
    Some((tenant, (*agent).to_owned(), AgentTopicKind::parse(kind)?))
}

/// Where a segment's policy versions are published (QoS 1, retained: a new subscriber gets the
/// latest at once, and `distribution::offer` finds any gap behind it).
pub fn segment_policy_topic(prefix: &str, key: &SegmentKey) -> String {
    format!("{prefix}/{}/segments/{}/policy", key.tenant, key.segment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::SegmentId;
    use crate::TenantId;

    #[test]
    fn agent_topics_round_trip_and_hostile_ones_are_refused() {
        let acme = TenantId::parse("acme").unwrap();
        let t = agent_topic("pc", &acme, "laptop-7", AgentTopicKind::Hello);
        assert_eq!(t, "pc/acme/agents/laptop-7/hello");
        assert_eq!(
            parse_agent_topic("pc", &t),
            Some((acme.clone(), "laptop-7".into(), AgentTopicKind::Hello))
        );
        assert_eq!(
            agent_topic_filter("pc", AgentTopicKind::Status),
            "pc/+/agents/+/status"
        );
        for bad in [
            "pc/acme/agents/laptop-7/other",
            "pc/ACME/agents/a/hello",
            "pc/acme/agents/-a/hello",
            "pc/acme/agents/a/hello/x",
            "pcx/acme/agents/a/hello",
            "pc/acme/segments/hr/policy",
        ] {
            assert_eq!(parse_agent_topic("pc", bad), None, "{bad}");
        }
    }

    #[test]
    fn a_segments_topic_names_its_tenant_and_segment() {
        let key = SegmentKey {
            tenant: TenantId::parse("acme").unwrap(),
            segment: SegmentId::parse("hr").unwrap(),
        };
        assert_eq!(
            segment_policy_topic("portcullis", &key),
            "portcullis/acme/segments/hr/policy"
        );
    }
}
