//! Where messages come from: Kafka (CloudTrail records) and MQTT (agent events), and memory for
//! benchmarks. Sources share one batcher and one way of keeping batches in flight.

mod batcher;
mod in_flight;
pub mod kafka;
pub mod memory;
pub mod mqtt;

pub use batcher::BatchLimits;
pub use in_flight::{InFlight, NotCommitted};
