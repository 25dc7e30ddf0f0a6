//! Segment ids: `[a-z][a-z0-9_-]{0,62}`, safe as an MQTT topic level and a directory name.

use std::fmt;

use serde::{Deserialize, Serialize};

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
        "segment id {0:?} must start with a lower-case letter and contain only a-z, 0-9, _ and -"
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
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !(first_ok && rest_ok) {
            return Err(SegmentIdError::BadCharacters(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
        for ok in ["hr", "hr-laptops", "eu_finance2"] {
            assert_eq!(SegmentId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "HR", "hr/#", "+", "2hr", "hr laptops", "hr.eu"] {
            assert!(SegmentId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            SegmentId::parse(&"a".repeat(64)),
            Err(SegmentIdError::TooLong(64))
        );
    }
}
