//! Asking for a remediation command again: a violation gets one action by itself when it opens
//! (or re-opens); a person may ask for another, for instance after a dry run, or after an
//! executor failed for a reason since fixed. Whether such a request can be taken.

use uuid::Uuid;

use super::{Control, RemediationStrategy, ViolationStatus};

/// Why a request for a new remediation command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestRefused {
    #[error(
        "the violation is {0}: only an open, acknowledged or remediating violation is remediated"
    )]
    NotActive(ViolationStatus),
    #[error("remediation action {id} for this violation is still {status}: wait for its result")]
    InFlight { id: Uuid, status: String },
    #[error("pack {pack} as the tenant serves it now has no control {control}")]
    NoControl { pack: String, control: String },
    #[error("control {control} remediates {strategy}: nothing is sent, the violation is the task")]
    NothingToSend {
        control: String,
        strategy: &'static str,
    },
}

/// What a new action sends: the strategy (automatic or scheduled) and the executor's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedRemediation {
    pub strategy: RemediationStrategy,
    pub action: String,
}

/// Whether a violation in `status`, judged by `control` as the tenant serves it now (`None`:
/// its pack no longer has it), with the action still waiting for a result if there is one
/// (`in_flight`: id and status), may have a new command; and what that command does.
pub fn remediation_request(
    status: ViolationStatus,
    pack: &str,
    control_id: &str,
    control: Option<&Control>,
    in_flight: Option<(Uuid, &str)>,
) -> Result<RequestedRemediation, RequestRefused> {
    if !status.is_active() {
        return Err(RequestRefused::NotActive(status));
    }
    if let Some((id, status)) = in_flight {
        return Err(RequestRefused::InFlight {
            id,
            status: status.to_owned(),
        });
    }
    let control = control.ok_or_else(|| RequestRefused::NoControl {
        pack: pack.to_owned(),
        control: control_id.to_owned(),
    })?;
    let remediation = &control.remediation;
    match (remediation.strategy, &remediation.action) {
        (RemediationStrategy::Automatic | RemediationStrategy::Scheduled, Some(action)) => {
            Ok(RequestedRemediation {
                strategy: remediation.strategy,
                action: action.clone(),
            })
        }
        (strategy, _) => Err(RequestRefused::NothingToSend {
            control: control.id.clone(),
            strategy: strategy.as_str(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn control(strategy: &str, action: Option<&str>) -> Control {
        serde_json::from_value(json!({
            "id": "s3-public",
            "title": "S3 bucket made public",
            "severity": "high",
            "resource": {"type": "AWS::S3::Bucket", "ids": ["/requestParameters/bucketName"]},
            "rationale": "r",
            "remediation": {"text": "block it", "strategy": strategy, "action": action},
        }))
        .unwrap()
    }

    #[test]
    fn an_active_violation_of_a_self_remediating_control_gets_its_action() {
        let c = control("scheduled", Some("s3.put_public_access_block"));
        for status in [
            ViolationStatus::Open,
            ViolationStatus::Acknowledged,
            ViolationStatus::Remediating,
        ] {
            let r = remediation_request(status, "p", "s3-public", Some(&c), None).unwrap();
            assert_eq!(r.strategy, RemediationStrategy::Scheduled);
            assert_eq!(r.action, "s3.put_public_access_block");
        }
    }

    #[test]
    fn resolved_suppressed_in_flight_missing_and_manual_are_refused() {
        let c = control("automatic", Some("a"));
        for status in [ViolationStatus::Resolved, ViolationStatus::Suppressed] {
            assert_eq!(
                remediation_request(status, "p", "s3-public", Some(&c), None),
                Err(RequestRefused::NotActive(status))
            );
        }
        let id = Uuid::nil();
        let e = remediation_request(
            ViolationStatus::Open,
            "p",
            "x",
            Some(&c),
            Some((id, "sent")),
        )
        .unwrap_err();
        assert!(e.to_string().contains("still sent"), "{e}");
        let e = remediation_request(ViolationStatus::Open, "p", "x", None, None).unwrap_err();
        assert!(matches!(e, RequestRefused::NoControl { .. }), "{e}");
        for c in [control("manual", None), control("compensating", Some("a"))] {
            let e = remediation_request(ViolationStatus::Open, "p", "s3-public", Some(&c), None)
                .unwrap_err();
            assert!(e.to_string().contains("nothing is sent"), "{e}");
        }
        // Automatic, but without an action to run: nothing to send either.
        let e = remediation_request(
            ViolationStatus::Open,
            "p",
            "s3-public",
            Some(&control("automatic", None)),
            None,
        )
        .unwrap_err();
        assert!(matches!(e, RequestRefused::NothingToSend { .. }), "{e}");
    }
}
