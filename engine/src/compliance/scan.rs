//! A scan: every control of a framework, for one tenant, judged PASS, FAIL or MUTED from its
//! violations, with the framework's pass rate and a severity-weighted score (as Prowler's).

use serde::{Deserialize, Serialize};

use super::PackManifest;
use crate::signals::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ControlStatus {
    /// No violation of the control is active.
    Pass,
    /// At least one of its violations is open, acknowledged or being remediated.
    Fail,
    /// None is active, and at least one is suppressed: a risk someone accepted for a while.
    Muted,
}

impl ControlStatus {
    /// From the control's counts of active and suppressed violations.
    pub fn of(active: i64, suppressed: i64) -> Self {
        match (active, suppressed) {
            (a, _) if a > 0 => Self::Fail,
            (_, s) if s > 0 => Self::Muted,
            _ => Self::Pass,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Muted => "MUTED",
        }
    }
}

/// One control's line in a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlResult {
    pub pack: String,
    pub pack_version: String,
    pub control_id: String,
    /// The framework's own name for the requirement (`4.1`, `T1562.008`).
    pub requirement: String,
    pub title: String,
    pub severity: Severity,
    pub status: ControlStatus,
    /// Resources with an active violation of the control.
    pub failing_resources: i64,
    pub muted_resources: i64,
    /// Findings that violated it during the scan's period.
    pub findings_in_period: i64,
    pub resource_type: String,
    pub remediation: String,
}

/// A framework's totals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScanSummary {
    pub passed: i64,
    pub failed: i64,
    pub muted: i64,
    /// Passed / (passed + failed), in percent; muted controls count in neither. `None` with
    /// nothing to judge.
    pub pass_rate: Option<f64>,
    /// As the pass rate, each control weighted by its severity ([`severity_weight`]).
    pub score: Option<f64>,
}

/// How much a control counts in the score: a failing critical control weighs as much as eight
/// failing low ones.
pub fn severity_weight(severity: Severity) -> f64 {
    match severity {
        Severity::Low => 1.0,
        Severity::Medium => 2.0,
        Severity::High => 4.0,
        Severity::Critical => 8.0,
    }
}

impl ScanSummary {
    pub fn of(results: &[ControlResult]) -> Self {
        let count = |s: ControlStatus| results.iter().filter(|r| r.status == s).count() as i64;
        let (passed, failed, muted) = (
            count(ControlStatus::Pass),
            count(ControlStatus::Fail),
            count(ControlStatus::Muted),
        );
        let weight = |s: ControlStatus| -> f64 {
            results
                .iter()
                .filter(|r| r.status == s)
                .map(|r| severity_weight(r.severity))
                .sum()
        };
        let (wp, wf) = (weight(ControlStatus::Pass), weight(ControlStatus::Fail));
        let percent = |part: f64, whole: f64| (whole > 0.0).then(|| 100.0 * part / whole);
        Self {
            passed,
            failed,
            muted,
            pass_rate: percent(passed as f64, (passed + failed) as f64),
            score: percent(wp, wp + wf),
        }
    }
}

/// Every (pack, control, requirement) of `framework` among `packs`, in the packs' order.
pub fn framework_controls<'a>(
    packs: &'a [PackManifest],
    framework: &str,
) -> Vec<(&'a PackManifest, &'a super::Control, &'a str)> {
    packs
        .iter()
        .flat_map(|p| {
            p.controls.iter().filter_map(move |c| {
                c.frameworks
                    .get(framework)
                    .map(|requirement| (p, c, requirement.as_str()))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(severity: Severity, status: ControlStatus) -> ControlResult {
        ControlResult {
            pack: "p".into(),
            pack_version: "1".into(),
            control_id: "c".into(),
            requirement: "c".into(),
            title: "t".into(),
            severity,
            status,
            failing_resources: 0,
            muted_resources: 0,
            findings_in_period: 0,
            resource_type: "AWS::::Account".into(),
            remediation: "r".into(),
        }
    }

    #[test]
    fn a_control_fails_on_any_active_violation_and_is_muted_only_when_all_are_suppressed() {
        assert_eq!(ControlStatus::of(0, 0), ControlStatus::Pass);
        assert_eq!(ControlStatus::of(1, 3), ControlStatus::Fail);
        assert_eq!(ControlStatus::of(0, 2), ControlStatus::Muted);
    }

    #[test]
    fn the_score_weighs_failures_by_severity_and_leaves_muted_out() {
        use ControlStatus::*;
        let s = ScanSummary::of(&[
            result(Severity::Critical, Fail),
            result(Severity::Low, Pass),
            result(Severity::Low, Pass),
            result(Severity::High, Muted),
        ]);
        assert_eq!((s.passed, s.failed, s.muted), (2, 1, 1));
        assert!((s.pass_rate.unwrap() - 200.0 / 3.0).abs() < 1e-9);
        assert!(
            (s.score.unwrap() - 20.0).abs() < 1e-9,
            "2 of 10 weighted: {s:?}"
        );
        assert_eq!(
            ScanSummary::of(&[result(Severity::Low, Muted)]).pass_rate,
            None
        );
    }
}
