//! Tenant identifiers, validated once at every edge they enter through.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest tenant id accepted. Short enough for topic names, directory names and Rego packages.
pub const MAX_TENANT_ID_LEN: usize = 63;

/// A tenant id: `[a-z][a-z0-9_]{0,62}`.
///
/// The pattern is strict on purpose: the id becomes a directory name, an MQTT topic level and a
/// Rego package segment (`tenants.{id}`), so it must be safe and unambiguous in all three. No dots,
/// slashes, hyphens, wildcards or upper case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is {0} characters long; at most {MAX_TENANT_ID_LEN} are allowed")]
    TooLong(usize),
    #[error("tenant id {0:?} must start with a lower-case letter and contain only a-z, 0-9 and _")]
    BadCharacters(String),
}

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, TenantIdError> {
        if raw.is_empty() {
            return Err(TenantIdError::Empty);
        }
        if raw.len() > MAX_TENANT_ID_LEN {
            return Err(TenantIdError::TooLong(raw.len()));
        }
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !first_ok || !rest_ok {
            // Echo at most a bounded, printable prefix: the input may be hostile.
            let shown: String = raw.chars().take(MAX_TENANT_ID_LEN).collect();
            return Err(TenantIdError::BadCharacters(shown));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Rego package every policy of this tenant must live in (or below).
    pub fn rego_package(&self) -> String {
        format!("tenants.{}", self.0)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TenantId {
    type Err = TenantIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_simple_ids() {
        for ok in ["acme", "a", "tenant_a", "t2", "globex_eu_1"] {
            assert_eq!(TenantId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_hostile_ids() {
        for bad in [
            "../etc", "a/b", "a.b", "Acme", "1acme", "_a", "a-b", "a b", "+", "#", "a\0b", "é",
        ] {
            assert!(
                matches!(TenantId::parse(bad), Err(TenantIdError::BadCharacters(_))),
                "{bad:?} accepted"
            );
        }
        assert_eq!(TenantId::parse(""), Err(TenantIdError::Empty));
        assert_eq!(
            TenantId::parse(&"a".repeat(64)),
            Err(TenantIdError::TooLong(64))
        );
        assert!(TenantId::parse(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<TenantId>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"../x\"").is_err());
    }

    #[test]
    fn rego_package_is_namespaced() {
        assert_eq!(
            TenantId::parse("acme").unwrap().rego_package(),
            "tenants.acme"
        );
    }
}
