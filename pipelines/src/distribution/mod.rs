//! Policy distribution to edge agents (seed 000), the edges: segmentation rules and signed
//! segment policy versions in Postgres, the signing key on disk, the sender that wakes each
//! segment's actor to publish its versions over MQTT, and the listener that hands agents'
//! hellos and statuses to their session actors.

mod agent_listener;
mod agent_store;
pub mod config;
mod decision_replies;
mod enrollment;
mod error;
mod membership;
mod outbox;
mod registry;
mod rules;
mod sender;
mod signing_key;
mod versions;

pub use agent_listener::{run_agent_listener, AgentDirectory};
pub use agent_store::{PgAgentStore, MAX_CATCH_UP};
pub use config::DistributionConfig;
pub use decision_replies::{decision_replies, run_decision_replies, DecisionReplies, Notice};
pub use enrollment::{
    enroll_agent, list_enrollments, revoke_agent, setup_broker, AgentCredentials, EnrollmentError,
    EnrollmentRow,
};
pub use error::DistributionError;
pub use membership::run_membership;
pub use outbox::PgMqttOutbox;
pub use registry::{list_agents, list_segments, AgentRow, SegmentRow};
pub use rules::{add_segment_rule, list_rules, remove_segment_rule, segmentation, RuleRow};
pub use sender::{run_sender, SegmentDirectory};
pub use signing_key::{load_or_create_signing_key, load_signing_key, SigningKeyError};
pub use versions::{
    list_versions, mark_sent, publish_version, segments_with_unsent, sent_through, unsent_versions,
    version_detail, NewVersion, PublishedVersion, VersionDetail,
};
