//! How bad a signal says things are, and how much trust that takes away.

use serde::{Deserialize, Serialize};

use crate::protection::ProtectionLevel;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "critical" => Self::Critical,
            _ => return None,
        })
    }

    /// Trust points (of 100) a signal of this severity takes while it lasts: a critical one
    /// takes it all.
    pub fn trust_penalty(self) -> f64 {
        match self {
            Self::Low => 10.0,
            Self::Medium => 25.0,
            Self::High => 50.0,
            Self::Critical => 100.0,
        }
    }

    /// The level a signal of this severity about a unit holds it at, at least, while it lasts:
    /// a high one has changes wait for approval, a critical one stops them. Lower ones are
    /// only told (the console, `GET /v1/signals`).
    pub fn protection_floor(self) -> Option<ProtectionLevel> {
        match self {
            Self::Low | Self::Medium => None,
            Self::High => Some(ProtectionLevel::RequireApproval),
            Self::Critical => Some(ProtectionLevel::ReadOnly),
        }
    }
}
