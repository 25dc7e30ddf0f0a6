use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::TenantId;

/// The outcome of judging one event (or one API input) with one tenant rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub decision_id: Uuid,
    pub event_id: String,
    /// Time of the event judged; decisions are stored in the event's time partition.
    pub event_time: DateTime<Utc>,
    pub tenant_id: TenantId,
    /// Full rule path, e.g. `data.tenants.acme.decision`.
    pub rule_path: String,
    /// `true` when the rule's value is `true` or an object with `"allow": true`.
    pub allowed: bool,
    /// The rule's full value; `null` when the rule was undefined for this input.
    pub result: serde_json::Value,
    pub bundle_revision: String,
    /// The bundle's content digest (`sha256:…`), shared by all its decisions.
    pub policy_digest: std::sync::Arc<str>,
    pub eval_micros: u64,
    /// The event's anomaly score policy was given, and the model version that gave it; `None`
    /// when no model scored the event.
    pub anomaly_score: Option<f64>,
    pub anomaly_model_version: Option<i32>,
    /// The protection level of the unit the event fell in, when a configured unit covers it
    /// (set by the event path, which counted the event's arrival).
    pub protection_level: Option<crate::protection::ProtectionLevel>,
    /// What the tenant's compliance packs found on a CloudTrail event; empty for other events
    /// and when no pack is enabled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<crate::compliance::Finding>,
    /// The resource a CloudTrail change event created, modified or deleted, for the inventory;
    /// kept when the tenant enables compliance packs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_change: Option<crate::compliance::ResourceChange>,
}

/// Reads the verdict out of a rule value: `true`, or `{"allow": true, ...}`. Anything else,
/// including an undefined rule, denies: a policy must say yes explicitly.
pub fn allowed_by(result: &serde_json::Value) -> bool {
    match result {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Object(o) => o.get("allow").and_then(|a| a.as_bool()).unwrap_or(false),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::allowed_by;

    #[test]
    fn only_explicit_yes_allows() {
        assert!(allowed_by(&json!(true)));
        assert!(allowed_by(&json!({"allow": true, "reasons": []})));
        assert!(!allowed_by(&json!(false)));
        assert!(!allowed_by(&json!({"allow": "yes"})));
        assert!(!allowed_by(&json!({"deny": []})));
        assert!(!allowed_by(&json!(null)));
        assert!(!allowed_by(&json!(1)));
    }
}
