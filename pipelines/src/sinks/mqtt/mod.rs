//! MQTT out: what the engine publishes to agents (segment policy versions), and the broker's
//! dynamic security API it enrolls agents through.

mod broker_admin;
mod publisher;
mod session;

pub use broker_admin::{control, control_all, role_acls, BrokerAdminError, CommandOutcome};
pub use publisher::{MqttPublisher, PublishFailed};
pub use session::discard_session;
