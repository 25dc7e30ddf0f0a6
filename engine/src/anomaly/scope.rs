//! What a model learns from: a tenant has one model line for CloudTrail and one for devices.

use serde::{Deserialize, Serialize};

use super::ModelError;
use crate::{Event, EventKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelScope {
    /// CloudTrail records from Kafka.
    Cloudtrail,
    /// Events agents publish over MQTT.
    Device,
}

impl ModelScope {
    pub const ALL: [ModelScope; 2] = [ModelScope::Cloudtrail, ModelScope::Device];

    pub fn parse(s: &str) -> Result<Self, ModelError> {
        match s {
            "cloudtrail" => Ok(ModelScope::Cloudtrail),
            "device" => Ok(ModelScope::Device),
            _ => Err(ModelError::InvalidParameters(format!(
                "scope must be cloudtrail or device, got {:?}",
                s.chars().take(64).collect::<String>()
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ModelScope::Cloudtrail => "cloudtrail",
            ModelScope::Device => "device",
        }
    }

    /// Whose trust its anomalies lower: the principal of a CloudTrail record, the agent that
    /// sent a device event.
    pub fn subject_kind(self) -> &'static str {
        match self {
            ModelScope::Cloudtrail => "principal",
            ModelScope::Device => "agent",
        }
    }

    /// The subject of an event of this scope (`subject_kind`).
    pub fn subject_of(self, event: &Event) -> &str {
        match self {
            ModelScope::Cloudtrail => &event.principal,
            // A device event's account is the agent that sent it.
            ModelScope::Device => &event.account,
        }
    }

    /// The scope whose model scores events of this kind.
    pub fn of(kind: EventKind) -> Self {
        match kind {
            EventKind::Cloudtrail => ModelScope::Cloudtrail,
            EventKind::Device => ModelScope::Device,
        }
    }
}

impl std::fmt::Display for ModelScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_prints_and_nothing_else() {
        for scope in ModelScope::ALL {
            assert_eq!(ModelScope::parse(scope.as_str()), Ok(scope));
        }
        assert!(ModelScope::parse("Cloudtrail").is_err());
        assert!(ModelScope::parse("").is_err());
        assert_eq!(ModelScope::of(EventKind::Device), ModelScope::Device);
    }
}
