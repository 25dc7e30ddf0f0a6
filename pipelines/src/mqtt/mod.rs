//! MQTT: device events from edge agents.

mod source;

pub use source::run_source;
