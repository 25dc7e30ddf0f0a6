//! Trust in words, for people and policies: what a score from 0 to 100 means.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustLevel {
    /// 80–100: nothing unusual lately.
    Trusted,
    /// 50–79: an anomaly or two lately.
    Watch,
    /// 20–49: repeated or strong anomalies; the example policies ask for MFA.
    Low,
    /// 0–19: the example policies refuse changes.
    Untrusted,
}

impl TrustLevel {
    pub fn of(trust: u8) -> Self {
        match trust {
            80.. => TrustLevel::Trusted,
            50..=79 => TrustLevel::Watch,
            20..=49 => TrustLevel::Low,
            _ => TrustLevel::Untrusted,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::Trusted => "trusted",
            TrustLevel::Watch => "watch",
            TrustLevel::Low => "low",
            TrustLevel::Untrusted => "untrusted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_at_their_edges() {
        let levels: Vec<_> = [100, 80, 79, 50, 49, 20, 19, 0]
            .into_iter()
            .map(|t| TrustLevel::of(t).as_str())
            .collect();
        assert_eq!(
            levels,
            [
                "trusted",
                "trusted",
                "watch",
                "watch",
                "low",
                "low",
                "untrusted",
                "untrusted"
            ]
        );
    }
}
