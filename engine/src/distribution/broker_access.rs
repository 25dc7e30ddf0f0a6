//! What each party may do on the broker when it checks identities (docs/operations.md, "Agent
//! identity on the broker"): an enrolled agent publishes only on its own topics and reads only
//! its own answers and its tenant's segment policy; the engine publishes under the prefix.

use super::topics::{agent_topic, AgentTopicKind};
use crate::TenantId;

/// The broker role the engine's account is given.
pub const ENGINE_ROLE: &str = "portcullis-engine";

/// One kind of access to one topic filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicAccess {
    /// The client may publish on topics matching it.
    Publish(String),
    /// The client may subscribe with this filter (or a narrower one) and receive what matches.
    Subscribe(String),
}

/// A named set of accesses: a broker role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAccess {
    pub role: String,
    pub topics: Vec<TopicAccess>,
}

/// The broker username of an enrolled agent: `{tenant}/{agent}` (neither holds `/`, `+`, `#`).
pub fn agent_username(tenant: &TenantId, agent: &str) -> String {
    format!("{tenant}/{agent}")
}

/// The MQTT client id an agent connects with; its credentials are bound to it. (On a broker
/// that also lets anonymous clients in, one could take the id, but would receive nothing: the
/// plugin's default denies receiving.)
pub fn agent_client_id(tenant: &TenantId, agent: &str) -> String {
    format!("portcullis-agent-{tenant}-{agent}")
}

/// The broker role holding one agent's access.
pub fn agent_role(tenant: &TenantId, agent: &str) -> String {
    format!("portcullis-agent:{tenant}/{agent}")
}

/// An agent's access: it says hello, reports its status (its last will included) and sends its
/// events under its own id; it reads its own config answers and decisions, and its tenant's
/// segment policy. Nothing of another agent or another tenant.
pub fn agent_broker_access(prefix: &str, tenant: &TenantId, agent: &str) -> BrokerAccess {
    let own = |kind| agent_topic(prefix, tenant, agent, kind);
    let mut topics: Vec<TopicAccess> = [
        AgentTopicKind::Hello,
        AgentTopicKind::Status,
        AgentTopicKind::Events,
    ]
    .into_iter()
    .map(|k| TopicAccess::Publish(own(k)))
    .collect();
    topics.extend(
        [AgentTopicKind::Config, AgentTopicKind::Decisions]
            .into_iter()
            .map(|k| TopicAccess::Subscribe(own(k))),
    );
    topics.push(TopicAccess::Subscribe(format!(
        "{prefix}/{tenant}/segments/+/policy"
    )));
    BrokerAccess {
        role: agent_role(tenant, agent),
        topics,
    }
}

/// The engine's access: it publishes segment policy and answers under the prefix and reads
/// everything agents send there, also through a shared subscription (several engines).
pub fn engine_broker_access(prefix: &str) -> BrokerAccess {
    BrokerAccess {
        role: ENGINE_ROLE.to_owned(),
        topics: vec![
            TopicAccess::Publish(format!("{prefix}/#")),
            TopicAccess::Subscribe(format!("{prefix}/#")),
            TopicAccess::Subscribe(format!("$share/+/{prefix}/#")),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_may_publish_only_its_own_topics_and_read_only_its_tenants_policy() {
        let acme = TenantId::parse("acme").unwrap();
        let access = agent_broker_access("pc", &acme, "laptop-1");
        assert_eq!(access.role, "portcullis-agent:acme/laptop-1");
        let publish: Vec<&str> = access
            .topics
            .iter()
            .filter_map(|t| match t {
                TopicAccess::Publish(p) => Some(p.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            publish,
            [
                "pc/acme/agents/laptop-1/hello",
                "pc/acme/agents/laptop-1/status",
                "pc/acme/agents/laptop-1/events"
            ]
        );
        let subscribe: Vec<&str> = access
            .topics
            .iter()
            .filter_map(|t| match t {
                TopicAccess::Subscribe(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            subscribe,
            [
                "pc/acme/agents/laptop-1/config",
                "pc/acme/agents/laptop-1/decisions",
                "pc/acme/segments/+/policy"
            ]
        );
        assert!(access.topics.iter().all(
            |t| !matches!(t, TopicAccess::Publish(p) | TopicAccess::Subscribe(p) if p.contains('#'))
        ));
    }

    #[test]
    fn names_are_bound_to_tenant_and_agent() {
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(agent_username(&acme, "l-1"), "acme/l-1");
        assert_eq!(agent_client_id(&acme, "l-1"), "portcullis-agent-acme-l-1");
        assert_eq!(engine_broker_access("pc").topics.len(), 3);
    }
}
