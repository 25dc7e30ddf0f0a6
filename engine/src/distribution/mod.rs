//! Policy distribution to edge agents (seed 000), the pure parts: segment ids, which segments
//! an agent's groups put it in, the signed envelope a segment policy version travels in, and the
//! rule by which an agent applies versions in order with no gap.

mod agent_messages;
mod broker_access;
mod enforcer;
mod envelope;
mod ordering;
mod policy_check;
mod policy_document;
mod segment;
mod segmentation;
mod topics;

pub use agent_messages::{
    check_groups, AgentKey, AgentMessageError, AgentStatus, ConfigReply, Hello, SegmentVersions,
    AGENT_PROTOCOL, MAX_GROUPS, MAX_GROUP_LEN,
};
pub use broker_access::{
    agent_broker_access, agent_client_id, agent_role, agent_username, engine_broker_access,
    BrokerAccess, TopicAccess, ENGINE_ROLE,
};
pub use enforcer::{Accepted, SegmentEnforcer};
pub use envelope::{
    encode_public_key, key_id_of, pae, parse_public_key, EnvelopeError, EnvelopeSignature,
    PolicySigner, SignedEnvelope, TrustedKeys, SEGMENT_POLICY_TYPE,
};
pub use ordering::{offer, Offer};
pub use policy_check::{check_segment_policy, MAX_SEGMENT_MODULES};
pub use policy_document::{SegmentPolicy, SEGMENT_POLICY_PROTOCOL};
pub use segment::{SegmentId, SegmentIdError, SegmentKey};
pub use segmentation::{SegmentRule, Segmentation};
pub use topics::{
    agent_topic, agent_topic_filter, parse_agent_topic, segment_policy_topic, AgentTopicKind,
};
