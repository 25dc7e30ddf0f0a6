//! MQTT out: what the engine publishes to agents (segment policy versions).

mod publisher;

pub use publisher::{MqttPublisher, PublishFailed};
