//! An approval request's life: pending until an approver answers or it expires.

use chrono::{DateTime, Utc};
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    /// Nobody answered in time: a denial.
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

/// An approver's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    Approve,
    Deny,
}

impl Resolution {
    pub fn status(self) -> ApprovalStatus {
        match self {
            Self::Approve => ApprovalStatus::Approved,
            Self::Deny => ApprovalStatus::Denied,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum ApprovalError {
    #[error("approval {id} was already answered: it is {}", status.as_str())]
    AlreadyAnswered { id: String, status: ApprovalStatus },
    #[error("approval {id} expired at {expired_at}; the request must be made again")]
    Expired {
        id: String,
        expired_at: DateTime<Utc>,
    },
}

/// Whether a request in `status`, expiring at `expires_at`, can be answered at `now`. A
/// pending request past its expiry is expired even before the engine has marked it.
pub fn check_answerable(
    id: &str,
    status: ApprovalStatus,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), ApprovalError> {
    match status {
        ApprovalStatus::Pending if now < expires_at => Ok(()),
        ApprovalStatus::Pending | ApprovalStatus::Expired => Err(ApprovalError::Expired {
            id: id.to_owned(),
            expired_at: expires_at,
        }),
        status => Err(ApprovalError::AlreadyAnswered {
            id: id.to_owned(),
            status,
        }),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn only_a_pending_request_before_its_expiry_is_answered() {
        let t = Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap();
        let exp = t + Duration::minutes(15);
        assert_eq!(
            check_answerable("a", ApprovalStatus::Pending, exp, t),
            Ok(())
        );
        assert!(matches!(
            check_answerable("a", ApprovalStatus::Pending, exp, exp),
            Err(ApprovalError::Expired { .. })
        ));
        assert!(matches!(
            check_answerable("a", ApprovalStatus::Expired, exp, t),
            Err(ApprovalError::Expired { .. })
        ));
        for done in [ApprovalStatus::Approved, ApprovalStatus::Denied] {
            let e = check_answerable("a", done, exp, t).unwrap_err();
            assert!(e.to_string().contains(done.as_str()), "{e}");
        }
        for s in ["pending", "approved", "denied", "expired"] {
            assert_eq!(ApprovalStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(ApprovalStatus::parse("maybe"), None);
        assert_eq!(Resolution::Approve.status(), ApprovalStatus::Approved);
    }
}
