//! What anomaly models find, on the real services: events scored at or above their line's
//! threshold become `anomalies` rows that say what made them unusual (once, whatever the
//! redelivery); they lower their principal's trust, which policy reads as
//! `input.context.principal_trust`, the API lists, and an engine that starts again resumes.

use std::time::Duration;

use portcullis::runtime::block_on;
use serde_json::{json, Value};

use crate::common::{
    http_get, odd_cloudtrail as odd, post_json, request, usual_cloudtrail as usual, TestEnv,
    ACME_ACCOUNT,
};

const WAIT: Duration = Duration::from_secs(30);

async fn get_json(api: &crate::common::Api, path: &str) -> (u16, Value) {
    let (status, body) = http_get(api, path).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The trust policy saw for `event_id` (echoed into its reasons by the test's rule).
async fn trust_seen(env: &TestEnv, event_id: &str) -> f64 {
    let reasons: Value =
        sqlx::query_scalar("SELECT result->'reasons' FROM decisions WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    reasons
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r.as_str()?.strip_prefix("trust seen "))
        .unwrap_or_else(|| panic!("no trust in {reasons}"))
        .parse()
        .unwrap()
}

#[test]
fn anomalies_say_why_lower_trust_and_policy_reads_it() {
    block_on(async {
        let env = TestEnv::new("anomaly_findings").await;
        std::fs::write(
            env.bundles_dir().join("acme/trust_echo.rego"),
            "package tenants.acme\nimport rego.v1\n\
             reasons contains sprintf(\"trust seen %v\", [input.context.principal_trust]) if true\n",
        )
        .unwrap();
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let training = "/v1/anomaly/acme/cloudtrail/training";
        assert_eq!(post_json(&api, training, &json!({})).await.0, 201);
        let batch: Vec<(&str, Vec<u8>)> = (0..120)
            .map(|i| (ACME_ACCOUNT, serde_json::to_vec(&usual(i)).unwrap()))
            .collect();
        env.produce(&batch).await;
        env.expect_count("SELECT count(*) FROM training_rows", 120, WAIT)
            .await;
        // Before a model, every principal has full trust.
        assert_eq!(trust_seen(&env, "usual-0").await, 100.0);
        let (status, stopped) = post_json(&api, &format!("{training}/stop"), &json!({})).await;
        assert_eq!(status, 200, "{stopped}");

        // Settings: checked, for registered tenants, and picked up by the engine.
        let settings = "/v1/anomaly/acme/cloudtrail/settings";
        for (body, want) in [
            (json!({"threshold": 1.5}), 400),
            (json!({"threshold": 0.7, "colour": "red"}), 400),
            (json!({"trust_half_life_secs": 5}), 400),
        ] {
            let (status, text) =
                request(&api, "PUT", settings, &[], body.to_string().as_bytes()).await;
            assert_eq!(status, want, "{body}: {text}");
        }
        let (status, _) = request(
            &api,
            "PUT",
            "/v1/anomaly/nosuch/cloudtrail/settings",
            &[],
            br#"{"threshold": 0.6}"#,
        )
        .await;
        assert_eq!(status, 404);
        let (status, text) = request(&api, "PUT", settings, &[], br#"{"threshold": 0.6}"#).await;
        assert_eq!(status, 200, "{text}");
        let (_, listed) = get_json(&api, "/v1/anomaly-settings?tenant_id=acme").await;
        let line = listed["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scope"] == "cloudtrail")
            .unwrap()
            .clone();
        assert_eq!(
            (
                line["threshold"].as_f64(),
                line["trust_half_life_secs"].as_u64()
            ),
            (Some(0.6), Some(3600))
        );

        // Odd records until one is found an anomaly at the new threshold (the model and the
        // settings reload on their NOTIFYs; until then records are judged as before).
        let deadline = std::time::Instant::now() + WAIT;
        let mut round = 0;
        let found = loop {
            round += 1;
            let id = format!("odd-{round}");
            let bytes = serde_json::to_vec(&odd(&id)).unwrap();
            env.produce(&[(ACME_ACCOUNT, bytes.clone())]).await;
            env.expect_count(
                &format!("SELECT count(*) FROM decisions WHERE event_id = '{id}'"),
                1,
                WAIT,
            )
            .await;
            let row: Option<(f64, f64, Value, i16)> = sqlx::query_as(
                "SELECT score, threshold, unusual, trust FROM anomalies WHERE event_id = $1",
            )
            .bind(&id)
            .fetch_optional(&env.pool)
            .await
            .unwrap();
            if let Some(row) = row.filter(|r| r.1 == 0.6) {
                break (id, bytes, row);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no anomaly at 0.6 by round {round}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let (odd_id, odd_bytes, (score, _, unusual, trust)) = found;
        assert!(score >= 0.6, "{score}");
        // What made it unusual: named features of the CloudTrail schema, most telling first.
        let unusual = unusual.as_array().unwrap().clone();
        assert!(!unusual.is_empty() && unusual.len() <= 3, "{unusual:?}");
        let schema = [
            "event_name",
            "event_source",
            "identity_type",
            "error_code",
            "region",
            "client_family",
            "address_class",
            "hour_of_day",
            "read_only",
            "mfa",
            "new_api_for_principal",
            "new_address_for_principal",
            "new_client_for_principal",
            "rate_vs_own",
        ];
        for u in &unusual {
            assert!(schema.contains(&u["feature"].as_str().unwrap()), "{u}");
        }
        let weights: Vec<f64> = unusual
            .iter()
            .map(|u| u["weight"].as_f64().unwrap())
            .collect();
        assert!(weights.windows(2).all(|w| w[0] >= w[1]), "{weights:?}");
        // Every stored anomaly reached its threshold, and every event scored at or above 0.7
        // (the highest threshold in force) is one.
        assert_eq!(
            env.count("SELECT count(*) FROM anomalies WHERE score < threshold")
                .await,
            0
        );
        assert_eq!(
            env.count(
                "SELECT count(*) FROM decisions d WHERE d.anomaly_score >= 0.7 AND NOT EXISTS
                 (SELECT 1 FROM anomalies a WHERE a.event_id = d.event_id)"
            )
            .await,
            0
        );
        // The anomaly lowered alice's trust; policy saw it, and it was stored.
        assert!(trust < 100, "{trust}");
        assert_eq!(trust_seen(&env, &odd_id).await, f64::from(trust));
        let principal: String =
            sqlx::query_scalar("SELECT principal FROM events WHERE event_id = $1")
                .bind(&odd_id)
                .fetch_one(&env.pool)
                .await
                .unwrap();
        let stored: i16 = sqlx::query_scalar(
            "SELECT trust FROM trust_scores WHERE tenant_id = 'acme' AND subject_kind = 'principal' AND subject = $1",
        )
        .bind(&principal)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert!(
            stored <= trust,
            "stored {stored}, after the anomaly {trust}"
        );

        // The API lists both, scoped to the caller's tenants.
        let (status, anomalies) =
            get_json(&api, "/v1/anomalies?tenant_id=acme&scope=cloudtrail").await;
        assert_eq!(status, 200);
        let listed = anomalies["result"].as_array().unwrap();
        let mine = listed
            .iter()
            .find(|a| a["event_id"] == odd_id.as_str())
            .unwrap();
        assert_eq!(mine["subject"], principal.as_str());
        // Its decision is found (a deny: the echo rule gives every decision here a reason).
        assert_eq!(mine["outcome"], "deny");
        assert_eq!(mine["score"].as_f64(), Some(score));
        let (status, trust_list) = get_json(&api, "/v1/trust-scores?kind=principal").await;
        assert_eq!(status, 200);
        let alice = &trust_list["result"][0];
        assert_eq!(alice["subject"], principal.as_str(), "{trust_list}");
        assert!(alice["trust"].as_u64().unwrap() < 100);
        assert!(alice["anomalies_24h"].as_i64().unwrap() >= 1);
        assert!(["watch", "low", "untrusted"].contains(&alice["level"].as_str().unwrap()));
        let globex_only = env.token(&["read:globex"]).await;
        let (_, none) = get_json(&api.with_token(Some(&globex_only)), "/v1/anomalies").await;
        assert_eq!(
            none["result"],
            json!([]),
            "another tenant's anomalies are not shown"
        );
        let (status, _) = get_json(
            &api.with_token(Some(&globex_only)),
            "/v1/trust-scores?tenant_id=acme",
        )
        .await;
        assert_eq!(status, 403);
        let (status, _) = request(
            &api.with_token(Some(&globex_only)),
            "PUT",
            settings,
            &[],
            br#"{"threshold": 0.65}"#,
        )
        .await;
        assert_eq!(status, 403);

        // A redelivered anomaly is stored once, and takes no more trust.
        let anomalies_now = env.count("SELECT count(*) FROM anomalies").await;
        let mut fresh = usual(4);
        fresh["eventID"] = json!("fresh-1");
        env.produce(&[
            (ACME_ACCOUNT, odd_bytes),
            (ACME_ACCOUNT, serde_json::to_vec(&fresh).unwrap()),
        ])
        .await;
        env.expect_count(
            "SELECT count(*) FROM decisions WHERE event_id = 'fresh-1'",
            1,
            WAIT,
        )
        .await;
        assert_eq!(
            env.count("SELECT count(*) FROM anomalies").await,
            anomalies_now
        );
        let before_restart = trust_seen(&env, "fresh-1").await;
        assert!(
            before_restart < 100.0 && before_restart >= f64::from(trust),
            "after the anomaly {trust}, after its redelivery {before_restart}"
        );
        engine.stop().await.unwrap();

        // An engine that starts again resumes alice's trust rather than forgetting it.
        let engine = env.start().await;
        let mut after = usual(5);
        after["eventID"] = json!("after-restart");
        env.produce(&[(ACME_ACCOUNT, serde_json::to_vec(&after).unwrap())])
            .await;
        env.expect_count(
            "SELECT count(*) FROM decisions WHERE event_id = 'after-restart'",
            1,
            WAIT,
        )
        .await;
        let resumed = trust_seen(&env, "after-restart").await;
        assert!(
            resumed < 100.0 && resumed >= before_restart,
            "before the restart {before_restart}, after {resumed}"
        );
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
