//! The three protection levels, least to most protective.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtectionLevel {
    /// All operations as policy says.
    Permissive,
    /// Writes wait for a human.
    RequireApproval,
    /// Only reads.
    ReadOnly,
}

impl ProtectionLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permissive => "permissive",
            Self::RequireApproval => "require_approval",
            Self::ReadOnly => "read_only",
        }
    }

    /// One step less protective (the least stays).
    pub fn relaxed(self) -> Self {
        match self {
            Self::ReadOnly => Self::RequireApproval,
            Self::RequireApproval | Self::Permissive => Self::Permissive,
        }
    }
}

impl std::fmt::Display for ProtectionLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
