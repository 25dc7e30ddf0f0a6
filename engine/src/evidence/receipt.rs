//! The record a decision leaves: who, what, the outcome and why, under which policy, on what
//! input. A receipt is stored, hashed and exported as the exact bytes [`Receipt::to_bytes`]
//! made; verifiers hash those bytes and never re-encode them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::approval::Verdict;
use crate::protection::ProtectionLevel;
use crate::{Decision, Event};

/// Bumped when a field is added, removed or changes meaning.
pub const RECEIPT_VERSION: u8 = 1;

/// What was decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// An event of the stream (Kafka, MQTT).
    Event,
    /// A decision API or gateway query.
    Query,
    /// An approval request answered (approved, denied) or expired.
    Approval,
}

impl ReceiptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Query => "query",
            Self::Approval => "approval",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    Deny,
    /// The rule asked for a person's decision; the approval's own receipt says what it was.
    RequireApproval,
}

impl Outcome {
    pub fn of(allowed: bool) -> Self {
        if allowed {
            Self::Allow
        } else {
            Self::Deny
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::RequireApproval => "require_approval",
        }
    }
}

impl From<Verdict> for Outcome {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Allow => Self::Allow,
            Verdict::Deny => Self::Deny,
            Verdict::RequireApproval => Self::RequireApproval,
        }
    }
}

/// An approval request's answer, as its receipt records it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalAnswered<'a> {
    pub tenant: &'a str,
    /// The receipt's own id (receipts are one per decision id).
    pub decision_id: Uuid,
    pub approval_id: Uuid,
    /// Who answered (a token's name, a CLI user), or `None` for an expiry.
    pub approver: Option<&'a str>,
    /// `approve`, `deny` or `expire`.
    pub action: &'static str,
    pub approved: bool,
    /// The approver's note, or why it expired.
    pub note: Option<&'a str>,
    /// The rule and policy of the decision that asked.
    pub rule: &'a str,
    pub policy_revision: &'a str,
    pub policy_digest: &'a str,
    /// `request_key` of the request answered: what was approved, pinned.
    pub request_key: &'a str,
    pub decided_at: DateTime<Utc>,
}

/// Fields are written in this order; absent values are written as `null`, so every receipt of
/// a version has the same keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub v: u8,
    pub tenant: String,
    pub kind: ReceiptKind,
    pub decision_id: Uuid,
    /// The event's id, or the API path queried.
    pub subject: String,
    pub event_time: Option<DateTime<Utc>>,
    pub principal: Option<String>,
    pub action: Option<String>,
    pub outcome: Outcome,
    /// The rule's `reasons`, as it gave them (`[]` when it gave none).
    pub reasons: Json,
    pub rule: String,
    pub policy_revision: String,
    /// The bundle's content digest: what the revision names, pinned.
    pub policy_digest: String,
    /// SHA-256 of the input as judged (the event's record, the query's input).
    pub input_digest: String,
    pub anomaly_score: Option<f64>,
    pub protection_level: Option<String>,
    pub decided_at: DateTime<Utc>,
}

impl Receipt {
    /// The receipt of a stream decision on `event`, whose record written as compact JSON has
    /// the digest `input_digest` ([`input_digest`] of those bytes, or [`json_digest`]).
    pub fn of_event(
        event: &Event,
        decision: &Decision,
        input_digest: String,
        decided_at: DateTime<Utc>,
    ) -> Self {
        Self {
            v: RECEIPT_VERSION,
            tenant: decision.tenant_id.as_str().to_owned(),
            kind: ReceiptKind::Event,
            decision_id: decision.decision_id,
            subject: event.event_id.clone(),
            event_time: Some(event.event_time),
            principal: Some(event.principal.clone()),
            action: Some(event.action.clone()),
            outcome: Verdict::of(&decision.result).into(),
            reasons: reasons_of(&decision.result),
            rule: decision.rule_path.clone(),
            policy_revision: decision.bundle_revision.clone(),
            policy_digest: decision.policy_digest.to_string(),
            input_digest,
            anomaly_score: decision.anomaly_score,
            protection_level: decision.protection_level.map(|l| l.as_str().to_owned()),
            decided_at,
        }
    }

    /// The receipt of a decision API query on `path` (the full rule path) with `input` as
    /// logged (the tenant's mask applied). Its principal and action are the input's
    /// `principal` and `action`, when they are strings.
    #[allow(clippy::too_many_arguments)]
    pub fn of_query(
        tenant: &str,
        decision_id: Uuid,
        path: &str,
        input: Option<&Json>,
        result: Option<&Json>,
        revision: &str,
        digest: &str,
        decided_at: DateTime<Utc>,
    ) -> Self {
        let field = |name: &str| {
            input
                .and_then(|i| i.get(name))
                .and_then(Json::as_str)
                .map(str::to_owned)
        };
        let result = result.cloned().unwrap_or(Json::Null);
        Self {
            v: RECEIPT_VERSION,
            tenant: tenant.to_owned(),
            kind: ReceiptKind::Query,
            decision_id,
            subject: path.to_owned(),
            event_time: None,
            principal: field("principal"),
            action: field("action"),
            outcome: Verdict::of(&result).into(),
            reasons: reasons_of(&result),
            rule: path.to_owned(),
            policy_revision: revision.to_owned(),
            policy_digest: digest.to_owned(),
            input_digest: input.map_or_else(|| input_digest(b""), json_digest),
            anomaly_score: None,
            protection_level: None,
            decided_at,
        }
    }

    /// The receipt of an approval request's answer.
    pub fn of_approval(a: &ApprovalAnswered<'_>) -> Self {
        Self {
            v: RECEIPT_VERSION,
            tenant: a.tenant.to_owned(),
            kind: ReceiptKind::Approval,
            decision_id: a.decision_id,
            subject: a.approval_id.to_string(),
            event_time: None,
            principal: a.approver.map(str::to_owned),
            action: Some(a.action.to_owned()),
            outcome: Outcome::of(a.approved),
            reasons: Json::Array(
                a.note
                    .map(|n| Json::String(n.to_owned()))
                    .into_iter()
                    .collect(),
            ),
            rule: a.rule.to_owned(),
            policy_revision: a.policy_revision.to_owned(),
            policy_digest: a.policy_digest.to_owned(),
            input_digest: a.request_key.to_owned(),
            anomaly_score: None,
            protection_level: None,
            decided_at: a.decided_at,
        }
    }

    /// This query's receipt with the protection level of the unit it fell in.
    pub fn with_protection(mut self, level: Option<ProtectionLevel>) -> Self {
        self.protection_level = level.map(|l| l.as_str().to_owned());
        self
    }

    /// This query's receipt when an approved request let it through: allowed, with the
    /// approval named after the rule's own reasons.
    pub fn granted_by(mut self, approval_id: Uuid) -> Self {
        self.outcome = Outcome::Allow;
        let grant = Json::String(format!("approved in approval {approval_id}"));
        match &mut self.reasons {
            Json::Array(reasons) => reasons.push(grant),
            other => *other = Json::Array(vec![grant]),
        }
        self
    }

    /// The exact bytes stored and hashed.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Only a map with non-string keys or a failing Serialize impl can fail; a receipt has
        // neither.
        serde_json::to_vec(self).expect("a receipt serializes")
    }
}

/// The `reasons` a rule's value gives, or `[]`.
pub fn reasons_of(result: &Json) -> Json {
    result
        .get("reasons")
        .cloned()
        .unwrap_or_else(|| Json::Array(Vec::new()))
}

/// `sha256:<hex>` of `value` written as compact JSON, hashed as it is written.
pub fn json_digest(value: &Json) -> String {
    let mut hasher = Sha256::new();
    // Writing to a hasher cannot fail, nor can a `Value`'s serialisation.
    let _ = serde_json::to_writer(&mut hasher, value);
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// `sha256:<hex>` of `bytes`.
pub fn input_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            v: RECEIPT_VERSION,
            tenant: "acme".into(),
            kind: ReceiptKind::Query,
            decision_id: Uuid::from_u128(1),
            subject: "tenants/acme/allow".into(),
            event_time: None,
            principal: None,
            action: None,
            outcome: Outcome::Deny,
            reasons: serde_json::json!(["no"]),
            rule: "data.tenants.acme.allow".into(),
            policy_revision: "r1".into(),
            policy_digest: "sha256:00".into(),
            input_digest: input_digest(b"{}"),
            anomaly_score: None,
            protection_level: None,
            decided_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn bytes_keep_field_order_and_nulls() {
        let text = String::from_utf8(receipt().to_bytes()).unwrap();
        assert!(text.starts_with(r#"{"v":1,"tenant":"acme","kind":"query","decision_id":"#));
        assert!(text.contains(r#""event_time":null"#));
        assert!(text.contains(r#""outcome":"deny","reasons":["no"]"#));
        let back: Receipt = serde_json::from_str(&text).unwrap();
        assert_eq!(back, receipt());
    }

    #[test]
    fn json_digest_is_the_digest_of_the_compact_text() {
        let v = serde_json::json!({"a": [1, "x"]});
        assert_eq!(json_digest(&v), input_digest(br#"{"a":[1,"x"]}"#));
    }

    #[test]
    fn reasons_default_to_an_empty_list() {
        assert_eq!(reasons_of(&serde_json::json!(true)), serde_json::json!([]));
        assert_eq!(
            reasons_of(&serde_json::json!({"allow": false, "reasons": ["r"]})),
            serde_json::json!(["r"])
        );
    }
}
