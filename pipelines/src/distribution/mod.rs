//! Policy distribution to edge agents (seed 000), the edges: segmentation rules and signed
//! segment policy versions in Postgres. Publishing records a version for sending in the same
//! transaction that numbers it; what was published and not yet sent is found after a restart.
//! (The segment actor that sends, the agent protocol and the agent come next.)

mod store;

pub use store::{
    add_segment_rule, mark_sent, publish_version, remove_segment_rule, segmentation,
    unsent_versions, DistributionError, NewVersion, PublishedVersion,
};
