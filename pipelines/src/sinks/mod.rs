//! Where things go: Postgres, the system of record; MQTT, to agents.

pub mod mqtt;
pub mod postgres;
