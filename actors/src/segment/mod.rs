//! The segment entity: sends one segment's published policy versions to its agents, in order,
//! each once acknowledged by the broker, and records that it did.

mod actor;
mod outbox;

pub use actor::{Flush, FlushError, Flushed, SegmentActor};
pub use outbox::{Claimed, OutboxError, OutgoingVersion, SegmentOutbox};
