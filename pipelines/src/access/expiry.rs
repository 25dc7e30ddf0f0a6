//! When a new token expires, from what its maker wrote: `90d`, `12h`, `1y`, or `never`.

use chrono::{DateTime, Utc};

/// How long a token lives when its maker does not say.
pub const DEFAULT_TOKEN_LIFETIME: &str = "90d";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    #[error("expiry {given:?}: {reason} (say e.g. \"90d\", \"12h\" or \"never\")")]
    Unreadable { given: String, reason: String },
    #[error("expiry {0:?} is zero or too far in the future")]
    OutOfRange(String),
}

/// `never` → `None`; otherwise that long after `now`.
pub fn expiry_from(given: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, ExpiryError> {
    let given = given.trim();
    if given.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let d = humantime::parse_duration(given).map_err(|e| ExpiryError::Unreadable {
        given: given.to_owned(),
        reason: e.to_string(),
    })?;
    chrono::Duration::from_std(d)
        .ok()
        .filter(|d| !d.is_zero())
        .and_then(|d| now.checked_add_signed(d))
        .map(Some)
        .ok_or_else(|| ExpiryError::OutOfRange(given.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_read_as_durations_from_now_or_never() {
        let now = Utc::now();
        assert_eq!(
            expiry_from("90d", now).unwrap(),
            Some(now + chrono::Duration::days(90))
        );
        assert_eq!(
            expiry_from(" 12h ", now).unwrap(),
            Some(now + chrono::Duration::hours(12))
        );
        assert_eq!(expiry_from("never", now).unwrap(), None);
        assert_eq!(expiry_from("NEVER", now).unwrap(), None);
        assert!(matches!(
            expiry_from("soon", now),
            Err(ExpiryError::Unreadable { .. })
        ));
        assert!(matches!(
            expiry_from("0s", now),
            Err(ExpiryError::OutOfRange(_))
        ));
        assert!(expiry_from("-5d", now).is_err());
        assert!(expiry_from("100000000000y", now).is_err());
    }
}
