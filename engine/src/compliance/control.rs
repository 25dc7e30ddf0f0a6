//! One control of a pack: what it checks, how bad a failure is, where it maps, what it
//! concerns, and how to put it right.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use sha2::Digest;

use super::PackError;
use crate::signals::Severity;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Unique in its pack: the framework's number (`4.1`) or a detection's name.
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// Framework id (declared by the pack) → this control's requirement in it.
    #[serde(default)]
    pub frameworks: BTreeMap<String, String>,
    pub resource: ResourceSpec,
    pub rationale: String,
    pub remediation: Remediation,
    /// The control is about calls that were refused or failed (CIS 4.1, 4.6): such a call is
    /// its violation. For every other control a failed call is an attempt, reported as a
    /// finding that did not succeed, and opens no violation.
    #[serde(default)]
    pub on_failure: bool,
}

/// The resource a control's finding concerns, as Cloud Custodian's `ids`: a type and JSON
/// pointers into the CloudTrail record tried in order; the first that holds a string or a
/// number names it. When none does the finding concerns the event's account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// A CloudFormation-style type, `AWS::EC2::SecurityGroup`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remediation {
    pub text: String,
    #[serde(default)]
    pub strategy: RemediationStrategy,
    /// The command an external executor runs for automatic and scheduled remediation
    /// (`"s3.put_public_access_block"`); Portcullis holds no cloud credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// Seed 004's remediation strategies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemediationStrategy {
    /// A command is sent as soon as the violation opens.
    Automatic,
    /// A command is sent in the tenant's next maintenance window.
    Scheduled,
    /// A person does it: the violation is their task.
    #[default]
    Manual,
    /// The risk is covered by another control; the violation is tracked, nothing is sent.
    Compensating,
}

impl RemediationStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Automatic => "automatic",
            Self::Scheduled => "scheduled",
            Self::Manual => "manual",
            Self::Compensating => "compensating",
        }
    }
}

impl Control {
    pub(crate) fn check(&self) -> Result<(), PackError> {
        if !valid_control_id(&self.id) {
            return Err(PackError::BadControlId(self.id.clone()));
        }
        if let Some(bad) = self.resource.ids.iter().find(|p| !p.starts_with('/')) {
            return Err(PackError::BadPointer {
                control: self.id.clone(),
                pointer: bad.clone(),
            });
        }
        Ok(())
    }

    /// The resource this control's finding on `raw` (a CloudTrail record) concerns:
    /// `(type, id)`.
    pub fn resource_of(&self, raw: &serde_json::Value) -> (&str, String) {
        for pointer in &self.resource.ids {
            match raw.pointer(pointer) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => {
                    return (&self.resource.kind, bounded_id(s))
                }
                Some(serde_json::Value::Number(n)) => return (&self.resource.kind, n.to_string()),
                _ => {}
            }
        }
        let account = raw
            .get("recipientAccountId")
            .or_else(|| raw.pointer("/userIdentity/accountId"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unknown");
        ("AWS::::Account", account.to_owned())
    }
}

/// Longest resource id kept as it is; a longer one (only a forged record has one) keeps its
/// start and a digest of the whole, so it stays unique and fits an index entry.
pub(crate) const MAX_RESOURCE_ID: usize = 512;

pub(crate) fn bounded_id(id: &str) -> String {
    if id.len() <= MAX_RESOURCE_ID {
        return id.to_owned();
    }
    let mut cut = 440;
    while !id.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = sha2::Sha256::digest(id.as_bytes());
    format!("{}…sha256:{}", &id[..cut], hex::encode(&digest[..16]))
}

fn valid_control_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn control(ids: &[&str]) -> Control {
        Control {
            id: "4.10".into(),
            title: "t".into(),
            severity: Severity::Medium,
            frameworks: BTreeMap::new(),
            resource: ResourceSpec {
                kind: "AWS::EC2::SecurityGroup".into(),
                ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            },
            rationale: "r".into(),
            remediation: Remediation {
                text: "x".into(),
                strategy: RemediationStrategy::Manual,
                action: None,
            },
            on_failure: false,
        }
    }

    #[test]
    fn the_first_pointer_that_names_something_wins_else_the_account() {
        let c = control(&["/requestParameters/groupId", "/responseElements/groupId"]);
        let created = json!({"recipientAccountId": "1", "requestParameters": {"groupName": "web"},
                             "responseElements": {"groupId": "sg-1"}});
        assert_eq!(
            c.resource_of(&created),
            ("AWS::EC2::SecurityGroup", "sg-1".into())
        );
        let changed = json!({"recipientAccountId": "1", "requestParameters": {"groupId": "sg-2"}});
        assert_eq!(c.resource_of(&changed).1, "sg-2");
        let nothing = json!({"recipientAccountId": "123", "requestParameters": {"groupId": ""}});
        assert_eq!(c.resource_of(&nothing), ("AWS::::Account", "123".into()));
    }

    #[test]
    fn a_forged_overlong_id_is_cut_and_stays_unique() {
        let long = "b".repeat(5000);
        let other = format!("{}c", "b".repeat(4999));
        let (a, b) = (bounded_id(&long), bounded_id(&other));
        assert!(a.len() <= MAX_RESOURCE_ID && b.len() <= MAX_RESOURCE_ID);
        assert_ne!(a, b);
        assert_eq!(bounded_id("sg-1"), "sg-1");
    }

    #[test]
    fn ids_and_pointers_are_checked() {
        assert!(control(&["/a"]).check().is_ok());
        assert!(matches!(
            control(&["a/b"]).check(),
            Err(PackError::BadPointer { .. })
        ));
        let mut c = control(&[]);
        c.id = "4 1".into();
        assert_eq!(c.check(), Err(PackError::BadControlId("4 1".into())));
    }
}
