//! What an edge agent enforces: the segment policies it has accepted, each verified, checked
//! and applied in order, evaluated together in one regorus engine for the agent's local
//! decision API (seed 001's `POST /v1/data/...`, under `data.segments`).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use super::envelope::{SignedEnvelope, TrustedKeys, SEGMENT_POLICY_TYPE};
use super::ordering::{offer, Offer};
use super::policy_check::check_segment_policy;
use super::policy_document::{SegmentPolicy, SEGMENT_POLICY_PROTOCOL};
use super::segment::SegmentId;
use crate::policy::{PolicyError, RulePath};
use crate::TenantId;

/// What became of an envelope offered to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Verified, checked and now enforced.
    Applied { segment: SegmentId, version: u64 },
    /// A version the agent already has (a redelivery, the retained copy, a replay).
    AlreadyHave { segment: SegmentId, version: u64 },
    /// Versions are missing before this one: ask for them (a hello with what is applied).
    Gap {
        segment: SegmentId,
        missing: RangeInclusive<u64>,
    },
    /// Not signed by a trusted key, not for this agent, or not a usable policy.
    Refused(String),
}

/// The segment policies an agent enforces.
pub struct SegmentEnforcer {
    tenant: TenantId,
    trusted: TrustedKeys,
    applied: BTreeMap<SegmentId, (SegmentPolicy, SignedEnvelope)>,
    compiled: Option<regorus::Engine>,
}

impl SegmentEnforcer {
    pub fn new(tenant: TenantId, trusted: TrustedKeys) -> Self {
        Self {
            tenant,
            trusted,
            applied: BTreeMap::new(),
            compiled: None,
        }
    }

    /// Per segment, the version enforced.
    pub fn applied(&self) -> BTreeMap<SegmentId, u64> {
        self.applied
            .iter()
            .map(|(s, (doc, _))| (s.clone(), doc.version))
            .collect()
    }

    /// The envelope of what is enforced for `segment` (what an agent keeps on disk).
    pub fn envelope(&self, segment: &SegmentId) -> Option<&SignedEnvelope> {
        self.applied.get(segment).map(|(_, e)| e)
    }

    /// Stops enforcing a segment the agent no longer belongs to.
    pub fn forget(&mut self, segment: &SegmentId) -> bool {
        let had = self.applied.remove(segment).is_some();
        if had {
            self.compiled = None;
        }
        had
    }

    /// Verifies `envelope` (from `topic_segment`'s topic, or from a config reply when `None`)
    /// and applies it if it is the next version of its segment (or the first the agent gets).
    pub fn accept(
        &mut self,
        topic_segment: Option<&SegmentId>,
        envelope: &SignedEnvelope,
    ) -> Accepted {
        let payload = match self.trusted.verify(envelope, SEGMENT_POLICY_TYPE) {
            Ok(p) => p,
            Err(e) => return Accepted::Refused(e.to_string()),
        };
        let doc = match SegmentPolicy::from_payload(payload) {
            Ok(d) => d,
            Err(e) => return Accepted::Refused(format!("not a segment policy: {e}")),
        };
        if doc.protocol != SEGMENT_POLICY_PROTOCOL {
            return Accepted::Refused(format!(
                "segment policy protocol {} is not understood (this agent reads {SEGMENT_POLICY_PROTOCOL})",
                doc.protocol
            ));
        }
        if doc.tenant_id != self.tenant {
            return Accepted::Refused(format!(
                "signed for tenant {}, not {}",
                doc.tenant_id, self.tenant
            ));
        }
        if topic_segment.is_some_and(|s| *s != doc.segment_id) {
            return Accepted::Refused(format!(
                "signed for segment {}, but came on another segment's topic",
                doc.segment_id
            ));
        }
        let current = self.applied.get(&doc.segment_id).map(|(d, _)| d.version);
        match offer(current, doc.version) {
            Offer::AlreadyHave => Accepted::AlreadyHave {
                segment: doc.segment_id,
                version: doc.version,
            },
            Offer::Gap { missing } => Accepted::Gap {
                segment: doc.segment_id,
                missing,
            },
            Offer::Apply => {
                if let Err(e) = check_segment_policy(&doc.segment_id, &doc.modules, &doc.data) {
                    return Accepted::Refused(format!("the policy does not compile here: {e}"));
                }
                let (segment, version) = (doc.segment_id.clone(), doc.version);
                self.applied
                    .insert(segment.clone(), (doc, envelope.clone()));
                self.compiled = None;
                Accepted::Applied { segment, version }
            }
        }
    }

    /// Evaluates `data.segments.<path>` (`path` as in the URL: `hr/allow`) on `input`; `None`
    /// when undefined.
    pub fn evaluate(
        &mut self,
        path: &str,
        input: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>, PolicyError> {
        let rule = RulePath::from_url(path)?.under("segments");
        if self.compiled.is_none() {
            self.compiled = Some(self.compile()?);
        }
        let engine = self.compiled.as_mut().expect("compiled above");
        engine.set_input(crate::policy::to_rego_value(input));
        let results = engine
            .eval_query(rule, false)
            .map_err(PolicyError::from_eval)?;
        let value = results
            .result
            .into_iter()
            .next()
            .and_then(|r| r.expressions.into_iter().next())
            .map(|e| e.value)
            .unwrap_or(regorus::Value::Undefined);
        crate::policy::value_to_json(value)
    }

    fn compile(&self) -> Result<regorus::Engine, PolicyError> {
        let mut engine = regorus::Engine::new();
        engine.set_strict_builtin_errors(false);
        let mut data = serde_json::Map::new();
        for (segment, (doc, _)) in &self.applied {
            for (file, src) in &doc.modules {
                let name = format!("{segment}/{file}");
                engine
                    .add_policy(name.clone(), src.clone())
                    .map_err(|e| PolicyError::Rego {
                        file: name,
                        message: e.to_string(),
                    })?;
            }
            data.insert(segment.to_string(), doc.data.clone());
        }
        engine
            .add_data(regorus::Value::from(
                serde_json::json!({ "segments": data }),
            ))
            .map_err(|e| PolicyError::Rego {
                file: "data".into(),
                message: e.to_string(),
            })?;
        Ok(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::PolicySigner;
    use chrono::Utc;
    use serde_json::json;

    fn seg(s: &str) -> SegmentId {
        SegmentId::parse(s).unwrap()
    }

    fn signed(
        signer: &PolicySigner,
        tenant: &str,
        segment: &str,
        version: u64,
        rule: &str,
    ) -> SignedEnvelope {
        let doc = SegmentPolicy {
            protocol: SEGMENT_POLICY_PROTOCOL,
            tenant_id: TenantId::parse(tenant).unwrap(),
            segment_id: seg(segment),
            version,
            modules: BTreeMap::from([(
                "p.rego".to_owned(),
                format!("package segments.{segment}\ndefault allow := false\n{rule}"),
            )]),
            data: json!({"level": version}),
            published_at: Utc::now(),
        };
        signer.sign(SEGMENT_POLICY_TYPE, doc.to_payload())
    }

    fn enforcer(signer: &PolicySigner) -> SegmentEnforcer {
        let mut keys = TrustedKeys::default();
        keys.trust_public(&signer.public_key()).unwrap();
        SegmentEnforcer::new(TenantId::parse("acme").unwrap(), keys)
    }

    #[test]
    fn versions_apply_in_order_and_decide_locally() {
        let key = PolicySigner::from_secret(&[1; 32]);
        let mut agent = enforcer(&key);
        let hr = seg("hr");
        let v1 = signed(&key, "acme", "hr", 1, "allow if input.action == \"read\"");
        assert_eq!(
            agent.accept(Some(&hr), &v1),
            Accepted::Applied {
                segment: hr.clone(),
                version: 1
            }
        );
        assert_eq!(
            agent
                .evaluate("hr/allow", &json!({"action": "read"}))
                .unwrap(),
            Some(json!(true))
        );
        assert_eq!(
            agent
                .evaluate("hr/allow", &json!({"action": "write"}))
                .unwrap(),
            Some(json!(false))
        );
        assert_eq!(
            agent.evaluate("hr", &json!({})).unwrap().unwrap()["allow"],
            json!(false)
        );
        assert_eq!(agent.evaluate("hr/nothing", &json!({})).unwrap(), None);
        // A jump asks for the gap; a repeat is ignored; the next applies.
        let v3 = signed(&key, "acme", "hr", 3, "allow if true");
        assert_eq!(
            agent.accept(Some(&hr), &v3),
            Accepted::Gap {
                segment: hr.clone(),
                missing: 2..=2
            }
        );
        assert!(matches!(
            agent.accept(None, &v1),
            Accepted::AlreadyHave { version: 1, .. }
        ));
        let v2 = signed(&key, "acme", "hr", 2, "allow if input.action == \"write\"");
        assert!(matches!(
            agent.accept(None, &v2),
            Accepted::Applied { version: 2, .. }
        ));
        assert_eq!(
            agent
                .evaluate("hr/allow", &json!({"action": "write"}))
                .unwrap(),
            Some(json!(true))
        );
        assert!(matches!(
            agent.accept(Some(&hr), &v3),
            Accepted::Applied { version: 3, .. }
        ));
        assert_eq!(agent.applied()[&hr], 3);
        assert_eq!(
            agent.evaluate("hr/allow", &json!({})).unwrap(),
            Some(json!(true))
        );
    }

    #[test]
    fn forged_foreign_or_misrouted_envelopes_are_refused() {
        let key = PolicySigner::from_secret(&[1; 32]);
        let mallory = PolicySigner::from_secret(&[66; 32]);
        let mut agent = enforcer(&key);
        let hr = seg("hr");
        let refused = |a: Accepted| matches!(a, Accepted::Refused(_));
        assert!(refused(
            agent.accept(Some(&hr), &signed(&mallory, "acme", "hr", 1, ""))
        ));
        let mut unsigned = signed(&key, "acme", "hr", 1, "");
        unsigned.signatures.clear();
        assert!(refused(agent.accept(Some(&hr), &unsigned)));
        assert!(refused(
            agent.accept(Some(&hr), &signed(&key, "globex", "hr", 1, ""))
        ));
        assert!(refused(agent.accept(
            Some(&seg("finance")),
            &signed(&key, "acme", "hr", 1, "")
        )));
        assert!(agent.applied().is_empty(), "nothing refused was applied");
    }
}
