//! MQTT topics of the agent protocol (docs/agent-protocol.md). `prefix` is the engine's
//! `mqtt.topic_prefix`; tenant and segment ids are valid topic levels by construction.

use super::segment::SegmentKey;

/// Where a segment's policy versions are published (QoS 1, retained: a new subscriber gets the
/// latest at once, and `distribution::offer` finds any gap behind it).
pub fn segment_policy_topic(prefix: &str, key: &SegmentKey) -> String {
    format!("{prefix}/{}/segments/{}/policy", key.tenant, key.segment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::SegmentId;
    use crate::TenantId;

    #[test]
    fn a_segments_topic_names_its_tenant_and_segment() {
        let key = SegmentKey {
            tenant: TenantId::parse("acme").unwrap(),
            segment: SegmentId::parse("hr").unwrap(),
        };
        assert_eq!(
            segment_policy_topic("portcullis", &key),
            "portcullis/acme/segments/hr/policy"
        );
    }
}
