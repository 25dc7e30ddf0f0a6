//! The three outcomes a rule's value can give.

use serde_json::Value as Json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    /// A person must decide: `"require_approval"`, or an object with `"require_approval": true`
    /// and no `"allow": true`.
    RequireApproval,
}

impl Verdict {
    /// Reads a rule's value. Only an explicit yes allows, as everywhere in Portcullis; an
    /// explicit allow wins over a request for approval in the same value.
    pub fn of(result: &Json) -> Self {
        match result {
            Json::Bool(true) => Self::Allow,
            Json::String(s) if s == "require_approval" => Self::RequireApproval,
            Json::Object(o) => {
                if o.get("allow") == Some(&Json::Bool(true)) {
                    Self::Allow
                } else if o.get("require_approval") == Some(&Json::Bool(true)) {
                    Self::RequireApproval
                } else {
                    Self::Deny
                }
            }
            _ => Self::Deny,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Verdict;
    use crate::policy::allowed_by;

    #[test]
    fn three_outcomes_are_read_from_a_rule_value() {
        let cases = [
            (json!(true), Verdict::Allow),
            (json!({"allow": true, "reasons": []}), Verdict::Allow),
            (
                json!({"allow": true, "require_approval": true}),
                Verdict::Allow,
            ),
            (json!("require_approval"), Verdict::RequireApproval),
            (
                json!({"allow": false, "require_approval": true, "reasons": ["write"]}),
                Verdict::RequireApproval,
            ),
            (json!({"require_approval": "yes"}), Verdict::Deny),
            (json!("allow"), Verdict::Deny),
            (json!(false), Verdict::Deny),
            (json!(null), Verdict::Deny),
            (json!({"allow": "true"}), Verdict::Deny),
        ];
        for (value, want) in cases {
            assert_eq!(Verdict::of(&value), want, "{value}");
            // The two-outcome reading agrees on what allows.
            assert_eq!(allowed_by(&value), want == Verdict::Allow, "{value}");
        }
    }
}
