//! What an approval request asks, and the key that finds it again when the same request
//! comes back (a retried page, a client polling by asking again).

use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// An approval request as the decision that needed it describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalRequest {
    pub tenant: String,
    /// The full rule path that answered `require_approval`.
    pub rule: String,
    pub principal: Option<String>,
    pub action: Option<String>,
    /// What is asked for, for the approver to read: `GET wiki.acme.example/reports/q3` for the
    /// gateway, the input's digest for the decision API.
    pub resource: String,
    /// The rule's reasons.
    pub reasons: Json,
    /// `api` or `gateway`.
    pub source: &'static str,
    /// The decision that asked, and the policy it was made under.
    pub decision_id: Uuid,
    pub policy_revision: String,
    pub policy_digest: String,
}

impl ApprovalRequest {
    /// The key of this request: the same rule, principal, action and resource give the same
    /// key, so a pending request is reused and an approved one found.
    pub fn key(&self) -> String {
        request_key(
            &self.tenant,
            &self.rule,
            self.principal.as_deref(),
            self.action.as_deref(),
            &self.resource,
        )
    }
}

/// `sha256:<hex>` over the parts, each length-prefixed so no two lists of parts collide.
pub fn request_key(
    tenant: &str,
    rule: &str,
    principal: Option<&str>,
    action: Option<&str>,
    resource: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [Some(tenant), Some(rule), principal, action, Some(resource)] {
        match part {
            Some(p) => {
                h.update([1]);
                h.update((p.len() as u64).to_be_bytes());
                h.update(p.as_bytes());
            }
            None => h.update([0]),
        }
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::request_key;

    #[test]
    fn keys_tell_requests_apart_and_find_the_same_one_again() {
        let k = |p: Option<&str>, a: Option<&str>, r: &str| request_key("acme", "x", p, a, r);
        let base = k(Some("alice"), Some("GET"), "/a");
        assert_eq!(base, k(Some("alice"), Some("GET"), "/a"));
        assert_ne!(base, k(Some("bob"), Some("GET"), "/a"));
        assert_ne!(base, k(Some("alice"), Some("POST"), "/a"));
        assert_ne!(base, k(Some("alice"), Some("GET"), "/b"));
        assert_ne!(
            base,
            request_key("globex", "x", Some("alice"), Some("GET"), "/a")
        );
        // Boundaries and absence count: no shifting of text between parts gives the same key.
        assert_ne!(k(Some("ab"), Some("c"), "/"), k(Some("a"), Some("bc"), "/"));
        assert_ne!(k(None, Some("GET"), "/a"), k(Some(""), Some("GET"), "/a"));
        assert!(base.starts_with("sha256:") && base.len() == 7 + 64);
    }
}
