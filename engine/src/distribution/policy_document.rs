//! One version of a segment's policy, as published and signed: the whole policy (Rego modules
//! and data), so an agent needs nothing else to enforce it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::segment::SegmentId;
use crate::policy::hash_modules;
use crate::TenantId;

/// The version of this document's shape, for agents to refuse what they do not understand.
pub const SEGMENT_POLICY_PROTOCOL: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentPolicy {
    pub protocol: u32,
    pub tenant_id: TenantId,
    pub segment_id: SegmentId,
    /// Strictly increasing per segment, from 1.
    pub version: u64,
    /// Rego modules by file name.
    pub modules: BTreeMap<String, String>,
    /// Data mounted under the segment's package; `{}` when none.
    pub data: serde_json::Value,
    pub published_at: DateTime<Utc>,
}

impl SegmentPolicy {
    /// Digest over what decides: modules and data (not the version or the time).
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        hash_modules(
            &mut h,
            self.modules.iter().map(|(n, s)| (n.as_str(), s.as_str())),
        );
        h.update(self.data.to_string().as_bytes());
        format!("sha256:{}", hex::encode(h.finalize()))
    }

    /// The bytes that are signed and sent.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a segment policy serializes")
    }

    pub fn from_payload(payload: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version: u64) -> SegmentPolicy {
        SegmentPolicy {
            protocol: SEGMENT_POLICY_PROTOCOL,
            tenant_id: TenantId::parse("acme").unwrap(),
            segment_id: SegmentId::parse("hr").unwrap(),
            version,
            modules: BTreeMap::from([(
                "usb.rego".to_owned(),
                "package segments.hr\ndeny if input.action == \"usb_mount\"".to_owned(),
            )]),
            data: serde_json::json!({"blocked": ["usb"]}),
            published_at: Utc::now(),
        }
    }

    #[test]
    fn a_document_reads_back_from_its_payload_and_its_digest_ignores_the_version() {
        let p = sample(3);
        assert_eq!(SegmentPolicy::from_payload(&p.to_payload()).unwrap(), p);
        assert_eq!(sample(4).digest(), p.digest());
        let mut changed = sample(3);
        changed.data = serde_json::json!({});
        assert_ne!(changed.digest(), p.digest());
        assert!(SegmentPolicy::from_payload(br#"{"protocol": 1}"#).is_err());
    }
}
