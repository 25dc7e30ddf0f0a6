//! MQTT: device events from edge agents.

pub mod config;
mod publish;
mod source;

pub use publish::{publish_all, PublishError};
pub use source::run_source;
