//! Units: which decisions share a load. Each decision has a unit key saying what it is about;
//! a configured unit covers the keys its selector names.
//!
//! Keys: `cloudtrail:<eventSource>` (e.g. `cloudtrail:iam.amazonaws.com`), `device:<service>`
//! for agent events, `api:<rule path>` for decision API queries, `gateway:<host>` for the
//! forward-auth gateway, and `approvals` for approval requests opened.

use std::sync::Arc;

use crate::Event;

use super::ProtectionLevel;

/// The unit key of a stream event.
pub fn event_unit_key(event: &Event) -> String {
    format!("{}:{}", event.kind.as_str(), event.service)
}

/// A unit's name: a letter or digit, then up to 62 letters, digits, `_`, `.` or `-`.
pub fn is_unit_name_valid(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= 63
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// What a decision is told of its unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitProtection {
    pub unit: Arc<str>,
    pub level: ProtectionLevel,
    pub rho: f64,
}

/// A unit's selector: a key, or a prefix followed by `*` (`cloudtrail:*`, `api:*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error(
        "a selector is 1 to 200 visible characters, e.g. cloudtrail:iam.amazonaws.com or api:*"
    )]
    Length,
    #[error("selector {0:?}: '*' may only end it (a prefix), as in cloudtrail:*")]
    Star(String),
}

impl Selector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        if s.is_empty() || s.len() > 200 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(SelectorError::Length);
        }
        if s.trim_end_matches('*').contains('*') || s.ends_with("**") {
            return Err(SelectorError::Star(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, key: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => self.0 == key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_name_a_key_or_a_prefix() {
        let iam = Selector::parse("cloudtrail:iam.amazonaws.com").unwrap();
        assert!(iam.matches("cloudtrail:iam.amazonaws.com"));
        assert!(!iam.matches("cloudtrail:iam.amazonaws.com.evil"));
        let all = Selector::parse("cloudtrail:*").unwrap();
        assert!(all.matches("cloudtrail:s3.amazonaws.com"));
        assert!(!all.matches("device:agent"));
        assert!(Selector::parse("*").unwrap().matches("anything"));
        assert!(is_unit_name_valid("iam") && is_unit_name_valid("s3.writes-2"));
        for bad in ["", "-x", "a b", "a/b", &"x".repeat(64)] {
            assert!(!is_unit_name_valid(bad), "{bad:?}");
        }
        for bad in ["", "a b", "a*b", "a**", &"x".repeat(201)] {
            assert!(Selector::parse(bad).is_err(), "{bad:?}");
        }
    }
}
