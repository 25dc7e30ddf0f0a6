//! One signal, as a tool sends it, checked.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use thiserror::Error;

use super::Severity;
use crate::protection::is_unit_name_valid;
use crate::TenantId;

/// Largest signal accepted, as sent.
pub const MAX_SIGNAL_BYTES: usize = 16 * 1024;
/// Longest a signal may last.
const MAX_LIFETIME_DAYS: i64 = 30;
const MAX_DETAIL_BYTES: usize = 4096;

/// What a signal says, as a tool sends it (docs/signals.md). Unknown fields are refused: a
/// misspelt `expires_at` must not become a signal that never expires.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    tenant_id: String,
    subject_kind: String,
    subject: String,
    kind: String,
    severity: String,
    source: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    ttl_secs: Option<i64>,
    #[serde(default)]
    detail: Option<Json>,
}

/// A checked signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    pub tenant: TenantId,
    /// `principal` (a CloudTrail principal's ARN), `agent` (an agent's id) or `unit` (a
    /// protection unit's name).
    pub subject_kind: &'static str,
    pub subject: String,
    pub kind: String,
    pub severity: Severity,
    pub source: String,
    /// The sender's id for it: the same id from the same source is the same signal (sent again,
    /// it changes nothing).
    pub id: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub detail: Option<Json>,
}

#[derive(Debug, Error, PartialEq)]
pub enum SignalError {
    #[error("a signal is at most {MAX_SIGNAL_BYTES} bytes")]
    TooLarge,
    #[error("not a signal: {0}")]
    NotJson(String),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(why: impl Into<String>) -> SignalError {
    SignalError::Invalid(why.into())
}

/// A short name: letters, digits, `_`, `.`, `-`, `:`, `/`, 1 to `max` bytes.
fn check_name(field: &str, value: &str, max: usize) -> Result<(), SignalError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} {value:?} must be 1 to {max} letters, digits, '_', '.', '-', ':' or '/'"
        )))
    }
}

impl Signal {
    /// Reads and checks one signal received at `now`.
    pub fn parse(bytes: &[u8], now: DateTime<Utc>) -> Result<Self, SignalError> {
        if bytes.len() > MAX_SIGNAL_BYTES {
            return Err(SignalError::TooLarge);
        }
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| SignalError::NotJson(e.to_string()))?;
        Self::check(wire, now)
    }

    /// Checks one signal given as a JSON value (one item of a batch) received at `now`.
    pub fn from_json(value: Json, now: DateTime<Utc>) -> Result<Self, SignalError> {
        if serde_json::to_vec(&value).map_or(true, |b| b.len() > MAX_SIGNAL_BYTES) {
            return Err(SignalError::TooLarge);
        }
        let wire: Wire =
            serde_json::from_value(value).map_err(|e| SignalError::NotJson(e.to_string()))?;
        Self::check(wire, now)
    }

    fn check(w: Wire, now: DateTime<Utc>) -> Result<Self, SignalError> {
        let tenant =
            TenantId::parse(&w.tenant_id).map_err(|e| invalid(format!("tenant_id: {e}")))?;
        let Some(subject_kind) = subject_kind(&w.subject_kind) else {
            return Err(invalid(format!(
                "subject_kind {:?} must be principal, agent or unit",
                w.subject_kind
            )));
        };
        if subject_kind == "unit" && !is_unit_name_valid(&w.subject) {
            return Err(invalid(format!(
                "subject {:?} is not a protection unit's name: 1 to 63 letters, digits, '_', \
                 '.' or '-', starting with a letter or digit",
                w.subject
            )));
        }
        if w.subject.is_empty() || w.subject.len() > 512 || w.subject.chars().any(char::is_control)
        {
            return Err(invalid(
                "subject must be 1 to 512 characters, without control characters",
            ));
        }
        check_name("kind", &w.kind, 64)?;
        check_name("source", &w.source, 64)?;
        if let Some(id) = &w.id {
            check_name("id", id, 128)?;
        }
        let severity = Severity::parse(&w.severity).ok_or_else(|| {
            invalid(format!(
                "severity {:?} must be low, medium, high or critical",
                w.severity
            ))
        })?;
        let expires_at = match (&w.expires_at, w.ttl_secs) {
            (Some(t), None) => DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| invalid(format!("expires_at {t:?} is not an RFC 3339 time: {e}")))?,
            (None, Some(secs)) if secs > 0 => now + Duration::seconds(secs.min(86_400 * 366)),
            (None, Some(_)) => return Err(invalid("ttl_secs must be at least 1")),
            _ => {
                return Err(invalid(
                    "give exactly one of expires_at (RFC 3339) or ttl_secs: a signal must end",
                ))
            }
        };
        if expires_at <= now {
            return Err(invalid(format!("it expired already, at {expires_at}")));
        }
        if expires_at > now + Duration::days(MAX_LIFETIME_DAYS) {
            return Err(invalid(format!(
                "it may last at most {MAX_LIFETIME_DAYS} days (send it again to extend it)"
            )));
        }
        if let Some(d) = &w.detail {
            let text = serde_json::to_string(d).unwrap_or_default();
            if text.len() > MAX_DETAIL_BYTES {
                return Err(invalid(format!(
                    "detail is at most {MAX_DETAIL_BYTES} bytes"
                )));
            }
            // Postgres stores no U+0000 in text or JSON.
            if text.contains("\\u0000") {
                return Err(invalid("detail must not contain U+0000 (NUL)"));
            }
        }
        Ok(Self {
            tenant,
            subject_kind,
            subject: w.subject,
            kind: w.kind,
            severity,
            source: w.source,
            id: w.id,
            expires_at,
            detail: w.detail,
        })
    }
}

/// What policy is told of a signal that lasts: `input.context.signals[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveSignal {
    /// What it is about: `principal`, `agent` (the decision's) or `unit` (its protection unit).
    pub about: &'static str,
    pub kind: String,
    pub severity: Severity,
    pub source: String,
    pub expires_at: DateTime<Utc>,
}

/// The name `subject_kind` is known by, as [`ActiveSignal::about`] gives it; `None` for
/// anything else.
pub fn subject_kind(kind: &str) -> Option<&'static str> {
    ["principal", "agent", "unit"]
        .into_iter()
        .find(|k| *k == kind)
}

/// Trust after the signals that still last at `now`: each about the principal or agent takes
/// its severity's penalty (a unit's raise its protection instead).
pub fn trust_after(trust: f64, signals: &[ActiveSignal], now: DateTime<Utc>) -> f64 {
    let taken: f64 = signals
        .iter()
        .filter(|s| s.expires_at > now && s.about != "unit")
        .map(|s| s.severity.trust_penalty())
        .sum();
    (trust - taken).clamp(0.0, 100.0)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap()
    }

    fn good() -> Json {
        json!({"tenant_id": "acme", "subject_kind": "principal",
               "subject": "arn:aws:iam::111111111111:user/alice", "kind": "leaked_credentials",
               "severity": "high", "source": "guardduty", "id": "gd-1", "ttl_secs": 3600,
               "detail": {"finding": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration"}})
    }

    #[test]
    fn a_good_signal_is_read_whole() {
        let s = Signal::parse(good().to_string().as_bytes(), now()).unwrap();
        assert_eq!(s.tenant.as_str(), "acme");
        assert_eq!(s.subject_kind, "principal");
        assert_eq!(s.severity, Severity::High);
        assert_eq!(s.expires_at, now() + Duration::hours(1));
        let mut at = good();
        at.as_object_mut().unwrap().remove("ttl_secs");
        at["expires_at"] = json!("2026-12-02T12:00:00Z");
        assert_eq!(
            Signal::from_json(at, now()).unwrap().expires_at,
            Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap()
        );
    }

    #[test]
    fn bad_signals_are_refused_with_the_reason() {
        let reason = |edit: &dyn Fn(&mut Json)| {
            let mut v = good();
            edit(&mut v);
            Signal::from_json(v, now()).unwrap_err().to_string()
        };
        assert!(reason(&|v| v["tenant_id"] = json!("../etc")).contains("tenant_id"));
        assert!(reason(&|v| v["subject_kind"] = json!("user")).contains("principal, agent or unit"));
        assert!(reason(&|v| {
            v["subject_kind"] = json!("unit");
            v["subject"] = json!("../iam");
        })
        .contains("protection unit"));
        assert!(reason(&|v| v["severity"] = json!("dire")).contains("severity"));
        assert!(reason(&|v| v["kind"] = json!("a b")).contains("kind"));
        assert!(reason(&|v| v["subject"] = json!("")).contains("subject"));
        assert!(reason(&|v| v["ttl_secs"] = json!(0)).contains("ttl_secs"));
        assert!(reason(&|v| v["expires_in"] = json!(5)).contains("unknown field"));
        assert!(reason(&|v| {
            v.as_object_mut().unwrap().remove("ttl_secs");
        })
        .contains("exactly one"));
        assert!(
            reason(&|v| v["expires_at"] = json!("2026-12-02T11:00:00Z")).contains("exactly one")
        );
        assert!(reason(&|v| {
            v.as_object_mut().unwrap().remove("ttl_secs");
            v["expires_at"] = json!("2026-12-01T00:00:00Z");
        })
        .contains("expired already"));
        assert!(reason(&|v| v["ttl_secs"] = json!(86_400 * 60)).contains("30 days"));
        assert!(reason(&|v| v["detail"] = json!("x".repeat(5000))).contains("detail"));
        assert!(reason(&|v| v["detail"] = json!({"a": "x\u{0}y"})).contains("NUL"));
        assert_eq!(
            Signal::parse(b"{not json", now())
                .unwrap_err()
                .to_string()
                .split(':')
                .next(),
            Some("not a signal")
        );
        assert_eq!(
            Signal::parse(&vec![b' '; MAX_SIGNAL_BYTES + 1], now()),
            Err(SignalError::TooLarge)
        );
    }

    #[test]
    fn a_signal_may_be_about_a_unit() {
        let mut v = good();
        v["subject_kind"] = json!("unit");
        v["subject"] = json!("iam");
        let s = Signal::from_json(v, now()).unwrap();
        assert_eq!((s.subject_kind, s.subject.as_str()), ("unit", "iam"));
    }

    #[test]
    fn lasting_signals_take_trust_by_severity() {
        let s = |severity, mins| ActiveSignal {
            about: "principal",
            kind: "k".into(),
            severity,
            source: "s".into(),
            expires_at: now() + Duration::minutes(mins),
        };
        assert_eq!(trust_after(100.0, &[], now()), 100.0);
        assert_eq!(
            trust_after(100.0, &[s(Severity::Medium, 5), s(Severity::Low, 5)], now()),
            65.0
        );
        assert_eq!(trust_after(80.0, &[s(Severity::Critical, 5)], now()), 0.0);
        let unit = ActiveSignal {
            about: "unit",
            ..s(Severity::Critical, 5)
        };
        assert_eq!(trust_after(80.0, &[unit], now()), 80.0, "a unit's");
        assert_eq!(
            trust_after(80.0, &[s(Severity::High, -1)], now()),
            80.0,
            "expired"
        );
    }
}
