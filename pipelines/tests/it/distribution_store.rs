//! Segment rules and signed segment policy versions in real Postgres: strictly increasing
//! versions without gaps under concurrent publishes, signed envelopes that verify, and the
//! published-but-unsent versions a restart must send.

use std::collections::BTreeMap;

use crate::common::TestEnv;
use portcullis::distribution::{
    add_segment_rule, mark_sent, publish_version, remove_segment_rule, segmentation,
    segments_with_unsent, sent_through, unsent_versions, DistributionError, NewVersion,
};
use portcullis::runtime::block_on;
use portcullis_engine::distribution::{
    PolicySigner, SegmentId, SegmentKey, SegmentPolicy, SegmentRule, TrustedKeys,
    SEGMENT_POLICY_TYPE,
};
use portcullis_engine::TenantId;

const MAX: usize = 1024 * 1024;

fn key(tenant: &str, segment: &str) -> SegmentKey {
    SegmentKey {
        tenant: TenantId::parse(tenant).unwrap(),
        segment: SegmentId::parse(segment).unwrap(),
    }
}

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
                    MAX,
                )
                .await
                .unwrap()
            }
        });
        let mut versions: Vec<u64> = futures::future::join_all(publishes)
            .await
            .iter()
            .map(|p| p.version.version)
            .collect();
        versions.sort();
        assert_eq!(versions, (1..=10).collect::<Vec<_>>());
        let other = publish_version(
            &env.pool,
            new_version("acme", "finance", "x := 1"),
            &signer,
            MAX,
        )
        .await
        .unwrap();
        assert_eq!(
            (other.version.version, other.created),
            (1, true),
            "each segment counts its own versions"
        );
        // The same policy again makes no new version: the latest is returned.
        let again = publish_version(
            &env.pool,
            new_version("acme", "finance", "x := 1"),
            &signer,
            MAX,
        )
        .await
        .unwrap();
        assert_eq!((again.version.version, again.created), (1, false));
        assert_eq!(again.version.digest, other.version.digest);

        // Every stored envelope verifies and says what its row says.
        let mut waiting = segments_with_unsent(&env.pool).await.unwrap();
        waiting.sort();
        assert_eq!(waiting, [key("acme", "finance"), key("acme", "hr")]);
        let hr = unsent_versions(&env.pool, &key("acme", "hr"))
            .await
            .unwrap();
        let numbers: Vec<u64> = hr.iter().map(|v| v.version).collect();
        assert_eq!(numbers, (1..=10).collect::<Vec<_>>(), "oldest first");
        let finance = unsent_versions(&env.pool, &key("acme", "finance"))
            .await
            .unwrap();
        for v in hr.iter().chain(&finance) {
            let payload = trusted.verify(&v.envelope, SEGMENT_POLICY_TYPE).unwrap();
            let doc = SegmentPolicy::from_payload(payload).unwrap();
            assert_eq!(
                (doc.version, doc.segment_id.clone()),
                (v.version, v.segment.clone())
            );
            assert_eq!(doc.digest(), v.digest);
            assert_eq!(doc.published_at, v.published_at);
            assert_eq!(v.key_id, "test-2026-12");
        }

        // Sent ones leave the list; what remains is what a restart sends.
        assert_eq!(
            sent_through(&env.pool, &key("acme", "hr")).await.unwrap(),
            0
        );
        for v in &hr {
            mark_sent(&env.pool, &v.key(), v.version).await.unwrap();
        }
        assert_eq!(
            sent_through(&env.pool, &key("acme", "hr")).await.unwrap(),
            10
        );
        assert_eq!(
            segments_with_unsent(&env.pool).await.unwrap(),
            [key("acme", "finance")]
        );

        // Refused: an unknown tenant, a policy without modules.
        let err = publish_version(
            &env.pool,
            new_version("umbrella", "hr", "x := 1"),
            &signer,
            MAX,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, DistributionError::UnknownTenant(_)), "{err}");
        let mut empty = new_version("acme", "hr", "");
        empty.modules.clear();
        assert!(matches!(
            publish_version(&env.pool, empty, &signer, MAX).await,
            Err(DistributionError::NoModules)
        ));
        let broken = new_version("acme", "hr", "x := ");
        assert!(matches!(
            publish_version(&env.pool, broken, &signer, MAX).await,
            Err(DistributionError::Policy(_))
        ));
        let mut big = new_version("acme", "hr", "x := 1");
        big.data = serde_json::json!({"blob": "a".repeat(4096)});
        let err = publish_version(&env.pool, big, &signer, 4096)
            .await
            .unwrap_err();
        assert!(matches!(err, DistributionError::TooLarge { .. }), "{err}");
        assert_eq!(
            env.count("SELECT latest_version FROM segments WHERE segment_id = 'hr'")
                .await,
            10,
            "refused publishes take no number"
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
