//! Anomaly models in the event path, on the real services: while a training session is active,
//! every judged event's features are collected (once, whatever the redelivery); stopping the
//! session trains a model from them, and from then on every event is scored before policy, the
//! score is stored with the event's decision, and policy reads it as `input.context.anomaly_score`.

use std::time::Duration;

use portcullis::runtime::block_on;
use serde_json::json;

use crate::common::{odd_cloudtrail, post_json, usual_cloudtrail as usual, TestEnv, ACME_ACCOUNT};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_session_collects_features_its_model_scores_live_events_and_policy_sees_the_score() {
    block_on(async {
        let env = TestEnv::new("anomaly_path").await;
        // Policy that echoes the score it is given, so the test can see what policy saw.
        std::fs::write(
            env.bundles_dir().join("acme/anomaly_echo.rego"),
            "package tenants.acme\nimport rego.v1\n\
             reasons contains sprintf(\"anomaly score %v\", [input.context.anomaly_score]) if {\n\
             \tinput.context.anomaly_score > 0\n}\n",
        )
        .unwrap();
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let training = "/v1/anomaly/acme/cloudtrail/training";
        let (status, started) = post_json(&api, training, &json!({})).await;
        assert_eq!(status, 201, "{started}");

        // 120 usual records, the last 20 sent twice (a redelivery): collected once each.
        let mut batch: Vec<(&str, Vec<u8>)> = (0..120)
            .map(|i| (ACME_ACCOUNT, serde_json::to_vec(&usual(i)).unwrap()))
            .collect();
        batch.extend((100..120).map(|i| (ACME_ACCOUNT, serde_json::to_vec(&usual(i)).unwrap())));
        env.produce(&batch).await;
        env.expect_count("SELECT count(*) FROM events", 120, WAIT)
            .await;
        env.expect_count("SELECT count(*) FROM training_rows", 120, WAIT)
            .await;
        // No model yet: nothing scored, and policy saw 0.
        assert_eq!(
            env.count("SELECT count(*) FROM decisions WHERE anomaly_score IS NOT NULL")
                .await,
            0
        );
        assert_eq!(
            env.count("SELECT count(*) FROM decisions WHERE result::text LIKE '%anomaly score%'")
                .await,
            0
        );
        let (cat, num): (Vec<String>, Vec<f64>) = sqlx::query_as(
            "SELECT categorical, numeric FROM training_rows WHERE event_id = 'usual-0'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(cat[0], "GetObject");
        assert_eq!(cat[5], "aws-cli");
        assert_eq!(cat[6], "private");
        assert_eq!(num.len(), 7);

        let (status, stopped) = post_json(&api, &format!("{training}/stop"), &json!({})).await;
        assert_eq!(status, 200, "{stopped}");
        assert_eq!(stopped["result"]["model"]["version"], 1, "{stopped}");
        assert_eq!(
            stopped["result"]["model"]["summary"]["rows"], 120,
            "{stopped}"
        );

        // The model line reloads on the NOTIFY; then one usual record and one that is not: a
        // first-time call, failing, from the internet, with a browser, in another region.
        let odd = odd_cloudtrail("odd-1");
        let deadline = std::time::Instant::now() + WAIT;
        let mut round = 0;
        let (usual_score, odd_score) = loop {
            // Until the reload is seen, records are judged unscored: send fresh ones each round.
            round += 1;
            let mut u = usual(round);
            u["eventID"] = json!(format!("after-usual-{round}"));
            let mut o = odd.clone();
            o["eventID"] = json!(format!("after-odd-{round}"));
            env.produce(&[
                (ACME_ACCOUNT, serde_json::to_vec(&u).unwrap()),
                (ACME_ACCOUNT, serde_json::to_vec(&o).unwrap()),
            ])
            .await;
            env.expect_count(
                &format!("SELECT count(*) FROM events WHERE event_id LIKE 'after-%-{round}'"),
                2,
                WAIT,
            )
            .await;
            let scores: Vec<(String, f64, i32)> = sqlx::query_as(
                "SELECT event_id, anomaly_score, anomaly_model_version FROM decisions
                 WHERE event_id LIKE 'after-%' AND anomaly_score IS NOT NULL ORDER BY event_id",
            )
            .fetch_all(&env.pool)
            .await
            .unwrap();
            let of = |prefix: &str| {
                scores
                    .iter()
                    .find(|(id, _, _)| id == &format!("{prefix}-{round}"))
                    .map(|(_, s, v)| (*s, *v))
            };
            if let (Some(u), Some(o)) = (of("after-usual"), of("after-odd")) {
                assert_eq!((u.1, o.1), (1, 1), "scored by version 1");
                break (u.0, o.0);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never scored: {scores:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert!(
            odd_score > usual_score + 0.1,
            "odd {odd_score}, usual {usual_score}"
        );
        // Policy saw the very score that was stored.
        let reasons: serde_json::Value =
            sqlx::query_scalar("SELECT result->'reasons' FROM decisions WHERE event_id = $1")
                .bind(format!("after-odd-{round}"))
                .fetch_one(&env.pool)
                .await
                .unwrap();
        let seen: f64 = reasons
            .as_array()
            .unwrap()
            .iter()
            .find_map(|r| r.as_str()?.strip_prefix("anomaly score "))
            .unwrap_or_else(|| panic!("no score in {reasons}"))
            .parse()
            .unwrap();
        assert!(
            (seen - odd_score).abs() < 1e-9,
            "policy saw {seen}, stored {odd_score}"
        );
        // The same record again (a redelivery) together with a new one: the batch meets a
        // stored decision, goes through staging, and keeps each score once.
        let scored = "SELECT count(*) FROM decisions WHERE anomaly_score IS NOT NULL";
        let scores = env.count(scored).await;
        let mut again = odd.clone();
        again["eventID"] = json!(format!("after-odd-{round}"));
        let mut fresh = usual(7);
        fresh["eventID"] = json!("fresh-1");
        env.produce(&[
            (ACME_ACCOUNT, serde_json::to_vec(&again).unwrap()),
            (ACME_ACCOUNT, serde_json::to_vec(&fresh).unwrap()),
        ])
        .await;
        env.expect_count(
            "SELECT count(*) FROM decisions WHERE event_id = 'fresh-1' AND anomaly_score IS NOT NULL",
            1,
            WAIT,
        )
        .await;
        assert_eq!(env.count(scored).await, scores + 1);
        // The session has ended: nothing more is collected.
        assert_eq!(env.count("SELECT count(*) FROM training_rows").await, 120);
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

/// An engine that starts again remembers the principals it saw: their first events after the
/// restart are not "new" (the model line warms up on recent events from Postgres).
#[test]
fn principals_are_remembered_across_an_engine_restart() {
    block_on(async {
        let env = TestEnv::new("anomaly_restart").await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let training = "/v1/anomaly/acme/cloudtrail/training";
        assert_eq!(post_json(&api, training, &json!({})).await.0, 201);
        let first: Vec<(&str, Vec<u8>)> = (0..3)
            .map(|i| (ACME_ACCOUNT, serde_json::to_vec(&usual(3 * i)).unwrap()))
            .collect();
        env.produce(&first).await;
        env.expect_count("SELECT count(*) FROM training_rows", 3, WAIT)
            .await;
        engine.stop().await.unwrap();

        let engine = env.start().await;
        let mut again = usual(0);
        again["eventID"] = json!("after-restart");
        env.produce(&[(ACME_ACCOUNT, serde_json::to_vec(&again).unwrap())])
            .await;
        env.expect_count("SELECT count(*) FROM training_rows", 4, WAIT)
            .await;
        let new: Vec<f64> = sqlx::query_scalar(
            "SELECT numeric[4:6] FROM training_rows WHERE event_id = 'after-restart'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        // new_api_for_principal, new_address_for_principal, new_client_for_principal.
        assert_eq!(
            new,
            [0.0, 0.0, 0.0],
            "alice's usual call after a restart is not new"
        );
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
