//! Segment ids: `[a-z][a-z0-9_]{0,62}`, as tenant ids: safe as an MQTT topic level, a directory
//! name and a Rego package name (`segments.<id>`); and the key of one tenant's segment.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::TenantId;

const MAX_LEN: usize = 63;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SegmentId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentIdError {
    #[error("segment id is empty")]
    Empty,
    #[error("segment id is {0} characters long; at most {MAX_LEN} are allowed")]
    TooLong(usize),
    #[error(
        "segment id {0:?} must start with a lower-case letter and contain only a-z, 0-9 and _"
    )]
    BadCharacters(String),
}

impl SegmentId {
    pub fn parse(raw: &str) -> Result<Self, SegmentIdError> {
        if raw.is_empty() {
            return Err(SegmentIdError::Empty);
        }
        if raw.len() > MAX_LEN {
            return Err(SegmentIdError::TooLong(raw.chars().count()));
        }
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !(first_ok && rest_ok) {
            return Err(SegmentIdError::BadCharacters(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Rego package a segment's modules live in (or below): `segments.<id>`.
    pub fn rego_package(&self) -> String {
        format!("segments.{}", self.0)
    }
}

/// One tenant's segment: what a segment actor, a topic and a version history belong to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentKey {
    pub tenant: TenantId,
    pub segment: SegmentId,
}

impl fmt::Display for SegmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.segment)
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SegmentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SegmentId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_ids_are_safe_topic_levels() {
        for ok in ["hr", "hr_laptops", "eu_finance2"] {
            assert_eq!(SegmentId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "HR", "hr/#", "+", "2hr", "hr laptops", "hr.eu", "hr-eu"] {
            assert!(SegmentId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            SegmentId::parse(&"a".repeat(64)),
            Err(SegmentIdError::TooLong(64))
        );
        assert_eq!(
            SegmentId::parse("hr_eu").unwrap().rego_package(),
            "segments.hr_eu"
        );
        let key = SegmentKey {
            tenant: TenantId::parse("acme").unwrap(),
            segment: SegmentId::parse("hr").unwrap(),
        };
        assert_eq!(key.to_string(), "acme/hr");
    }
}
