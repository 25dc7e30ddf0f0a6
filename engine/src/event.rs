//! The normalized event every source decodes into.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::TenantId;

/// Where an event entered the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Kafka,
    Mqtt,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Kafka => "kafka",
            Source::Mqtt => "mqtt",
        }
    }
}

/// What kind of record the event was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An AWS CloudTrail record.
    Cloudtrail,
    /// An event published by an edge agent.
    Device,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Cloudtrail => "cloudtrail",
            EventKind::Device => "device",
        }
    }
}

/// One normalized event. `raw` keeps the original record untouched for policies and analysts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Stable id: CloudTrail `eventID`, the agent's message `id`, or a content hash.
    pub event_id: String,
    pub tenant_id: TenantId,
    pub source: Source,
    pub kind: EventKind,
    pub event_time: DateTime<Utc>,
    /// Who acted: an IAM ARN, a user name, or an agent's user.
    pub principal: String,
    /// What they did: CloudTrail `eventName`, or the agent's `action`.
    pub action: String,
    /// CloudTrail `eventSource` (e.g. `iam.amazonaws.com`) or `agent` for device events.
    pub service: String,
    pub resource: Option<String>,
    pub source_ip: Option<String>,
    /// AWS account id (CloudTrail) or agent id (device events).
    pub account: String,
    pub raw: serde_json::Value,
}
