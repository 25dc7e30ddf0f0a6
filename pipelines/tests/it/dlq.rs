//! Dead letters re-driven after their cause is fixed: the operator's `dlq list` / `dlq replay`.

use std::time::Duration;

use crate::common::{cloudtrail, TestEnv};
use portcullis::cli::dlq;
use portcullis::path::Replayed;
use portcullis::runtime::block_on;
use portcullis::sinks::postgres::{add_tenant, DeadLetterFilter};
use portcullis_engine::TenantId;
use serde_json::json;

const INITECH_ACCOUNT: &str = "333333333333";

#[test]
fn replay_after_the_fix_stores_the_events_and_resolves_the_dead_letters() {
    block_on(async {
        let env = TestEnv::new("dlq").await;
        let engine = env.start().await;
        // Initech is not registered yet: its CloudTrail account is unmapped and its agents unknown.
        let mut rec = cloudtrail("dlq-ct-1", "ConsoleLogin", Some("No"));
        rec["recipientAccountId"] = json!(INITECH_ACCOUNT);
        rec["userIdentity"]["accountId"] = json!(INITECH_ACCOUNT);
        env.produce(&[(INITECH_ACCOUNT, serde_json::to_vec(&rec).unwrap())])
            .await;
        let device = json!({"id": "d1", "time": "2026-11-22T10:00:00Z", "user": "victor", "action": "write"});
        env.publish(&[(
            env.device_topic("initech", "pc-1"),
            serde_json::to_vec(&device).unwrap(),
        )])
        .await;
        assert_eq!(
            env.expect_count(
                "SELECT count(*) FROM dead_letters",
                2,
                Duration::from_secs(60)
            )
            .await,
            2
        );
        engine.stop().await.unwrap();

        let open = DeadLetterFilter {
            limit: 100,
            ..Default::default()
        };
        let listed = dlq::list(&env.config, &open).await.unwrap();
        assert_eq!(listed.len(), 2);
        let only_kafka = DeadLetterFilter {
            source: Some("kafka".into()),
            ..open.clone()
        };
        assert_eq!(dlq::list(&env.config, &only_kafka).await.unwrap().len(), 1);

        // Replaying before the fix changes nothing but the attempt count, and says why.
        let before = dlq::replay(&env.config, &open).await.unwrap();
        assert!(
            before
                .iter()
                .all(|(_, r)| matches!(r, Replayed::StillFailing(_))),
            "{before:?}"
        );
        assert_eq!(env.count("SELECT count(*) FROM events").await, 0);
        assert_eq!(
            env.count("SELECT min(replay_attempts)::int8 FROM dead_letters")
                .await,
            1
        );
        // The original reason stays; the replay's failure is kept beside it.
        let after_failed = dlq::list(&env.config, &open).await.unwrap();
        for row in &after_failed {
            let first = listed
                .iter()
                .find(|l| l.dead_letter_id == row.dead_letter_id)
                .unwrap();
            assert_eq!(row.reason, first.reason);
            assert!(
                row.last_replay_error
                    .as_deref()
                    .is_some_and(|e| !e.is_empty()),
                "{row:?}"
            );
        }

        // The fix: register the tenant with its account. Then replay.
        add_tenant(
            &env.pool,
            &TenantId::parse("initech").unwrap(),
            None,
            &[INITECH_ACCOUNT.into()],
        )
        .await
        .unwrap();
        let after = dlq::replay(&env.config, &open).await.unwrap();
        assert_eq!(after.len(), 2);
        assert!(
            after.iter().all(|(_, r)| matches!(
                r,
                Replayed::Stored {
                    events: 1,
                    new_rows: 1
                }
            )),
            "{after:?}"
        );
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT event_id, source, outcome FROM decision_log ORDER BY event_id")
                .fetch_all(&env.pool)
                .await
                .unwrap();
        assert_eq!(
            rows,
            vec![
                ("dlq-ct-1".into(), "kafka".into(), "deny".into()),
                ("pc-1/d1".into(), "mqtt".into(), "allow".into()),
            ]
        );
        assert_eq!(
            env.count("SELECT count(*) FROM dead_letters WHERE resolved_at IS NOT NULL")
                .await,
            2
        );
        // Resolved ones are no longer listed by default, and a second replay has nothing to do.
        assert!(dlq::list(&env.config, &open).await.unwrap().is_empty());
        assert!(dlq::replay(&env.config, &open).await.unwrap().is_empty());
        let all = DeadLetterFilter {
            include_resolved: true,
            ..open
        };
        assert_eq!(dlq::list(&env.config, &all).await.unwrap().len(), 2);
        env.cleanup().await;
    });
}
