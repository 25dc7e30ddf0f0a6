//! MQTT: device events from edge agents.

mod publish;
mod source;

pub use publish::{publish_all, PublishError};
pub use source::run_source;
