//! Remediation over Kafka (seed 004's policy agent, without cloud credentials): the command an
//! external executor receives for a violation whose control remediates automatically or in a
//! maintenance window, the result it sends back, and when a window is open.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an executor is asked to do. `remediation_id` is the key it deduplicates on: a command
/// may come more than once (sent, then the engine stopped before it noted so).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemediationCommand {
    pub remediation_id: Uuid,
    pub tenant_id: String,
    pub violation_id: Uuid,
    pub pack: String,
    pub control_id: String,
    /// The control's `remediation.action`, e.g. `s3.put_public_access_block`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub account: String,
    pub region: Option<String>,
    /// Check and report what would change, change nothing.
    pub dry_run: bool,
    pub requested_at: DateTime<Utc>,
}

/// What an executor reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationResult {
    pub remediation_id: Uuid,
    pub status: ResultStatus,
    /// Whether the executor ran it as a dry run (it must say what it did).
    pub dry_run: bool,
    #[serde(default)]
    pub detail: Option<String>,
    /// Which executor, for the record.
    #[serde(default)]
    pub executor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Succeeded,
    Failed,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// Longest `detail` or `executor` kept.
pub const MAX_RESULT_TEXT: usize = 2000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResultError {
    #[error("not a remediation result ({{\"remediation_id\", \"status\": \"succeeded\"|\"failed\", \"dry_run\", \"detail\", \"executor\"}}): {0}")]
    Malformed(String),
    #[error("detail and executor are at most {MAX_RESULT_TEXT} characters, without NUL")]
    TextTooLong,
}

impl RemediationResult {
    pub fn parse(bytes: &[u8]) -> Result<Self, ResultError> {
        let r: Self =
            serde_json::from_slice(bytes).map_err(|e| ResultError::Malformed(e.to_string()))?;
        let bad = |t: &Option<String>| {
            t.as_ref()
                .is_some_and(|t| t.chars().count() > MAX_RESULT_TEXT || t.contains('\0'))
        };
        if bad(&r.detail) || bad(&r.executor) {
            return Err(ResultError::TextTooLong);
        }
        Ok(r)
    }
}

/// A daily maintenance window: from `start` (UTC) for `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub start: NaiveTime,
    pub length: Duration,
}

impl MaintenanceWindow {
    /// Whether `now` falls in a window (today's, or yesterday's running past midnight).
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let today = now.date_naive().and_time(self.start).and_utc();
        [today, today - Duration::days(1)]
            .iter()
            .any(|&start| now >= start && now < start + self.length)
    }

    /// When the next window opens at or after `now` (`now` itself when one is open).
    pub fn next_open(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        if self.is_open(now) {
            return now;
        }
        let today = now.date_naive().and_time(self.start).and_utc();
        if today > now {
            today
        } else {
            today + Duration::days(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, h, m, 0).unwrap()
    }

    #[test]
    fn a_window_is_open_in_its_hours_even_past_midnight() {
        let w = MaintenanceWindow {
            start: NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
            length: Duration::hours(2),
        };
        assert!(w.is_open(at(23, 30)) && w.is_open(at(0, 59)));
        assert!(!w.is_open(at(1, 0)) && !w.is_open(at(22, 59)));
        assert_eq!(w.next_open(at(12, 0)), at(23, 0));
        assert_eq!(w.next_open(at(0, 30)), at(0, 30));
        let early = MaintenanceWindow {
            start: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
            length: Duration::hours(1),
        };
        assert_eq!(early.next_open(at(12, 0)), at(2, 0) + Duration::days(1));
    }

    #[test]
    fn results_are_read_strictly() {
        let id = Uuid::nil();
        let ok = RemediationResult::parse(
            format!(r#"{{"remediation_id": "{id}", "status": "succeeded", "dry_run": false, "executor": "lambda"}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!((ok.status, ok.dry_run), (ResultStatus::Succeeded, false));
        for bad in [
            r#"{"remediation_id": "x", "status": "succeeded", "dry_run": false}"#.to_owned(),
            format!(r#"{{"remediation_id": "{id}", "status": "done", "dry_run": false}}"#),
            format!(r#"{{"remediation_id": "{id}", "status": "failed"}}"#),
            format!(
                r#"{{"remediation_id": "{id}", "status": "failed", "dry_run": true, "extra": 1}}"#
            ),
            "not json".to_owned(),
        ] {
            assert!(
                matches!(
                    RemediationResult::parse(bad.as_bytes()),
                    Err(ResultError::Malformed(_))
                ),
                "{bad}"
            );
        }
        let long = format!(
            r#"{{"remediation_id": "{id}", "status": "failed", "dry_run": true, "detail": "{}"}}"#,
            "x".repeat(MAX_RESULT_TEXT + 1)
        );
        assert_eq!(
            RemediationResult::parse(long.as_bytes()),
            Err(ResultError::TextTooLong)
        );
    }
}
