//! Segment rules and signed segment policy versions in real Postgres: strictly increasing
//! versions without gaps under concurrent publishes, signed envelopes that verify, and the
//! published-but-unsent versions a restart must send.

mod common;

use std::collections::BTreeMap;

use common::TestEnv;
use portcullis::distribution::{
    add_segment_rule, mark_sent, publish_version, remove_segment_rule, segmentation,
    unsent_versions, DistributionError, NewVersion,
};
use portcullis::runtime::block_on;
use portcullis_engine::distribution::{
    PolicySigner, SegmentId, SegmentPolicy, SegmentRule, TrustedKeys, SEGMENT_POLICY_TYPE,
};
use portcullis_engine::TenantId;

fn new_version(tenant: &str, segment: &str, rule: &str) -> NewVersion {
    NewVersion {
        tenant: TenantId::parse(tenant).unwrap(),
        segment: SegmentId::parse(segment).unwrap(),
        modules: BTreeMap::from([(
            "policy.rego".to_owned(),
            format!("package segments.{segment}\n{rule}"),
        )]),
        data: serde_json::json!({}),
        published_by: "test".into(),
    }
}

#[test]
fn versions_are_numbered_without_gaps_signed_and_kept_until_sent() {
    block_on(async {
        let env = TestEnv::new("dist_store").await;
        let signer = PolicySigner::new("test-2026-12", &[5; 32]);
        let mut trusted = TrustedKeys::default();
        trusted
            .trust(signer.key_id(), &signer.public_key())
            .unwrap();

        // Ten publishes at once on one segment: versions 1..=10, each once.
        let publishes = (0..10).map(|i| {
            let pool = env.pool.clone();
            let signer = &signer;
            async move {
                publish_version(
                    &pool,
                    new_version("acme", "hr", &format!("n := {i}")),
                    signer,
                )
                .await
                .unwrap()
            }
        });
        let mut versions: Vec<u64> = futures::future::join_all(publishes)
            .await
            .iter()
            .map(|p| p.version)
            .collect();
        versions.sort();
        assert_eq!(versions, (1..=10).collect::<Vec<_>>());
        let other = publish_version(&env.pool, new_version("acme", "finance", "x := 1"), &signer)
            .await
            .unwrap();
        assert_eq!(other.version, 1, "each segment counts its own versions");

        // Every stored envelope verifies and says what its row says.
        let unsent = unsent_versions(&env.pool, 100).await.unwrap();
        assert_eq!(unsent.len(), 11);
        let hr: Vec<u64> = unsent
            .iter()
            .filter(|v| v.segment.as_str() == "hr")
            .map(|v| v.version)
            .collect();
        assert_eq!(hr, (1..=10).collect::<Vec<_>>(), "oldest first");
        for v in &unsent {
            let payload = trusted.verify(&v.envelope, SEGMENT_POLICY_TYPE).unwrap();
            let doc = SegmentPolicy::from_payload(payload).unwrap();
            assert_eq!(
                (doc.version, doc.segment_id.clone()),
                (v.version, v.segment.clone())
            );
            assert_eq!(doc.digest(), v.digest);
            assert_eq!(doc.published_at, v.published_at);
        }

        // Sent ones leave the list; what remains is what a restart sends.
        for v in unsent.iter().filter(|v| v.segment.as_str() == "hr") {
            mark_sent(&env.pool, &v.tenant, &v.segment, v.version)
                .await
                .unwrap();
        }
        let left = unsent_versions(&env.pool, 100).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].segment.as_str(), "finance");

        // Refused: an unknown tenant, a policy without modules.
        let err = publish_version(&env.pool, new_version("umbrella", "hr", "x := 1"), &signer)
            .await
            .unwrap_err();
        assert!(matches!(err, DistributionError::UnknownTenant(_)), "{err}");
        let mut empty = new_version("acme", "hr", "");
        empty.modules.clear();
        assert!(matches!(
            publish_version(&env.pool, empty, &signer).await,
            Err(DistributionError::NoModules)
        ));
        assert_eq!(
            env.count("SELECT latest_version FROM segments WHERE segment_id = 'hr'")
                .await,
            10,
            "a refused publish takes no number"
        );
        env.cleanup().await;
    });
}

#[test]
fn segmentation_rules_give_each_agent_its_segments() {
    block_on(async {
        let env = TestEnv::new("dist_rules").await;
        let acme = TenantId::parse("acme").unwrap();
        let rule = |group: &str, segment: &str| SegmentRule {
            group: group.into(),
            segment: SegmentId::parse(segment).unwrap(),
        };
        for r in [
            rule("HR", "hr"),
            rule("HR", "hr"),
            rule("HR-EU", "eu"),
            rule("Finance", "finance"),
        ] {
            add_segment_rule(&env.pool, &acme, &r).await.unwrap();
        }
        let s = segmentation(&env.pool, &acme).await.unwrap();
        let names: Vec<String> = s
            .segments_for(&["HR", "HR-EU"])
            .into_iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(names, ["eu", "hr"]);
        assert!(remove_segment_rule(&env.pool, &acme, &rule("HR-EU", "eu"))
            .await
            .unwrap());
        assert!(!remove_segment_rule(&env.pool, &acme, &rule("HR-EU", "eu"))
            .await
            .unwrap());
        let s = segmentation(&env.pool, &acme).await.unwrap();
        assert_eq!(s.segments_for(&["HR-EU"]).len(), 0);
        let umbrella = TenantId::parse("umbrella").unwrap();
        assert!(matches!(
            add_segment_rule(&env.pool, &umbrella, &rule("HR", "hr")).await,
            Err(DistributionError::UnknownTenant(_))
        ));
        env.cleanup().await;
    });
}
