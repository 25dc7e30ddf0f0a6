//! A violation's lifecycle: open → acknowledged → remediating → resolved, or suppressed for a
//! while with a reason. Which changes a person may make, and what each needs.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Longest a violation may be suppressed in one go: a risk accepted is reviewed at least yearly.
pub const MAX_SUPPRESSION: Duration = Duration::days(366);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationStatus {
    Open,
    Acknowledged,
    Remediating,
    Resolved,
    Suppressed,
}

impl ViolationStatus {
    pub const ALL: [Self; 5] = [
        Self::Open,
        Self::Acknowledged,
        Self::Remediating,
        Self::Resolved,
        Self::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Remediating => "remediating",
            Self::Resolved => "resolved",
            Self::Suppressed => "suppressed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the violation still counts against the tenant (everything but resolved and
    /// suppressed).
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Resolved | Self::Suppressed)
    }
}

impl std::fmt::Display for ViolationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change someone asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub to: ViolationStatus,
    pub reason: Option<String>,
    /// Until when a suppression holds; required for, and only for, `suppressed`.
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LifecycleError {
    #[error("a violation that is {from} cannot become {to}")]
    NotAllowed {
        from: ViolationStatus,
        to: ViolationStatus,
    },
    #[error("suppressing a violation needs a reason and an end (`until`)")]
    SuppressionIncomplete,
    #[error("a suppression ends in the future, at most {} days ahead", MAX_SUPPRESSION.num_days())]
    SuppressionOutOfRange,
    #[error("`until` is only for suppressing a violation")]
    UntilWithoutSuppression,
    #[error("a reason is at most {0} characters")]
    ReasonTooLong(usize),
}

/// Longest reason kept with a change.
pub const MAX_REASON_CHARS: usize = 1000;

impl StatusChange {
    /// Checks that a violation in `from` may take this change at `now`.
    pub fn check(&self, from: ViolationStatus, now: DateTime<Utc>) -> Result<(), LifecycleError> {
        use ViolationStatus::*;
        if self
            .reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
        {
            return Err(LifecycleError::ReasonTooLong(MAX_REASON_CHARS));
        }
        let allowed = match (from, self.to) {
            (Open, Acknowledged | Remediating | Resolved | Suppressed) => true,
            (Acknowledged, Open | Remediating | Resolved | Suppressed) => true,
            (Remediating, Acknowledged | Resolved | Suppressed) => true,
            // Re-opened by hand (a fix did not hold) or by the control firing again.
            (Resolved, Open) => true,
            // Lifted early, or found fixed while suppressed.
            (Suppressed, Open | Resolved) => true,
            _ => false,
        };
        if !allowed {
            return Err(LifecycleError::NotAllowed { from, to: self.to });
        }
        match (self.to, self.until) {
            (Suppressed, None) => Err(LifecycleError::SuppressionIncomplete),
            (Suppressed, Some(_)) if self.reason.as_deref().is_none_or(|r| r.trim().is_empty()) => {
                Err(LifecycleError::SuppressionIncomplete)
            }
            (Suppressed, Some(until)) if until <= now || until > now + MAX_SUPPRESSION => {
                Err(LifecycleError::SuppressionOutOfRange)
            }
            (Suppressed, Some(_)) => Ok(()),
            (_, Some(_)) => Err(LifecycleError::UntilWithoutSuppression),
            (_, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ViolationStatus::*;
    use super::*;

    fn to(status: ViolationStatus) -> StatusChange {
        StatusChange {
            to: status,
            reason: None,
            until: None,
        }
    }

    #[test]
    fn the_lifecycle_moves_forward_and_back_only_where_it_makes_sense() {
        let now = Utc::now();
        for (from, next) in [
            (Open, Acknowledged),
            (Acknowledged, Remediating),
            (Remediating, Resolved),
            (Resolved, Open),
            (Open, Resolved),
            (Remediating, Acknowledged),
        ] {
            assert_eq!(to(next).check(from, now), Ok(()), "{from} → {next}");
        }
        for (from, next) in [
            (Open, Open),
            (Resolved, Acknowledged),
            (Resolved, Suppressed),
        ] {
            assert_eq!(
                to(next).check(from, now),
                Err(LifecycleError::NotAllowed { from, to: next })
            );
        }
    }

    #[test]
    fn a_suppression_needs_a_reason_and_an_end_within_a_year() {
        let now = Utc::now();
        let mut s = to(Suppressed);
        assert_eq!(
            s.check(Open, now),
            Err(LifecycleError::SuppressionIncomplete)
        );
        s.until = Some(now + Duration::days(30));
        assert_eq!(
            s.check(Open, now),
            Err(LifecycleError::SuppressionIncomplete)
        );
        s.reason = Some("accepted risk: legacy bucket, ticket SEC-12".into());
        assert_eq!(s.check(Open, now), Ok(()));
        s.until = Some(now - Duration::seconds(1));
        assert_eq!(
            s.check(Open, now),
            Err(LifecycleError::SuppressionOutOfRange)
        );
        s.until = Some(now + Duration::days(400));
        assert_eq!(
            s.check(Open, now),
            Err(LifecycleError::SuppressionOutOfRange)
        );
        let mut r = to(Resolved);
        r.until = Some(now + Duration::days(1));
        assert_eq!(
            r.check(Open, now),
            Err(LifecycleError::UntilWithoutSuppression)
        );
        assert_eq!(ViolationStatus::parse("remediating"), Some(Remediating));
        assert!(!Suppressed.is_active() && Acknowledged.is_active());
    }
}
