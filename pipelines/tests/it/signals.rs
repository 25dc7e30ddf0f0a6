//! External trust signals against the running engine: taken from their Kafka topic and over
//! HTTP within scopes, malformed ones refused with their reason (dead letters from Kafka),
//! and while they last they lower their subject's trust and reach policy as
//! `input.context.signals`, for stream events and decision API queries alike.

use std::time::{Duration, Instant};

use portcullis::runtime::block_on;
use portcullis::sources::kafka::{produce_all, producer};
use serde_json::{json, Value};

use crate::common::{self, http_get, post_json, request, TestEnv, ACME_ACCOUNT};

const PROBE: &str = "/v1/data/tenants/acme/probe/context";
const ALICE: &str = "arn:aws:iam::111111111111:user/alice";
const MALLORY: &str = "arn:aws:iam::111111111111:user/mallory";

fn signal(subject: &str, severity: &str, id: &str) -> Value {
    json!({"tenant_id": "acme", "subject_kind": "principal", "subject": subject,
           "kind": "leaked_credentials", "severity": severity, "source": "guardduty",
           "id": id, "ttl_secs": 3600})
}

async fn signals_env(tag: &str) -> TestEnv {
    let mut env = TestEnv::new(tag).await;
    env.config.signals.kafka_topic = format!("sig_{tag}_{}", env.suffix);
    env.config.signals.refresh_ms = 200;
    std::fs::write(
        env.bundles_dir().join("acme/probe.rego"),
        "package tenants.acme.probe\nimport rego.v1\ncontext := input.context\n",
    )
    .unwrap();
    env
}

/// What policy is told about `principal` on the decision API, once `ready` holds.
async fn context_of(api: &common::Api, principal: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) =
            post_json(api, PROBE, &json!({"input": {"principal": principal}})).await;
        assert_eq!(status, 200, "{body}");
        if ready(&body["result"]) {
            return body["result"].clone();
        }
        assert!(
            Instant::now() < until,
            "context never became as expected: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn signals_over_http_lower_trust_and_reach_policy_within_scopes() {
    block_on(async {
        let mut env = signals_env("signals_http").await;
        env.config.kafka.enabled = false;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let tool = api.with_token(Some(&env.token_named("guardduty", &["signal:acme"]).await));
        let reader = api.with_token(Some(&env.token(&["read:acme"]).await));

        // Nothing about alice yet.
        let ctx = context_of(&api, ALICE, |_| true).await;
        assert_eq!(ctx["signals"], json!([]));
        assert_eq!(ctx["principal_trust"].as_f64(), Some(100.0));

        // A batch: one good, one malformed, one about a tenant the tool may not speak of.
        let mut other = signal(ALICE, "high", "gd-9");
        other["tenant_id"] = json!("globex");
        let batch = json!([
            signal(ALICE, "high", "gd-1"),
            signal(ALICE, "dire", "gd-2"),
            other
        ]);
        let (status, text) = request(
            &tool,
            "POST",
            "/v1/signals",
            &[],
            batch.to_string().as_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["accepted"], 1, "{answer}");
        assert_eq!(answer["refused"][0]["index"], 1);
        assert!(answer["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("severity"));
        assert_eq!(answer["refused"][1]["index"], 2);
        assert!(answer["refused"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("globex"));
        // Nothing good at all: 400. A reader may not send.
        let (status, _) = request(&tool, "POST", "/v1/signals", &[], b"{\"tenant_id\": 1}").await;
        assert_eq!(status, 400);
        let one = signal(ALICE, "low", "x").to_string();
        let (status, text) = request(&reader, "POST", "/v1/signals", &[], one.as_bytes()).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("may not send signals"), "{text}");

        // Policy sees it, and alice's trust is down by a high signal's 50.
        let ctx = context_of(&api, ALICE, |c| c["signals"] != json!([])).await;
        assert_eq!(ctx["signals"][0]["kind"], "leaked_credentials", "{ctx}");
        assert_eq!(ctx["signals"][0]["severity"], "high");
        assert_eq!(ctx["signals"][0]["source"], "guardduty");
        assert_eq!(ctx["principal_trust"].as_f64(), Some(50.0), "{ctx}");
        let bob = context_of(&api, "arn:aws:iam::111111111111:user/bob", |_| true).await;
        assert_eq!(bob["signals"], json!([]), "only its subject");

        // Sent again with the same id: replaced, not added (and now it ends in a second).
        let mut short = signal(ALICE, "critical", "gd-1");
        short["ttl_secs"] = json!(1);
        let (status, _) = request(
            &tool,
            "POST",
            "/v1/signals",
            &[],
            short.to_string().as_bytes(),
        )
        .await;
        assert_eq!(status, 200);
        let ctx = context_of(&api, ALICE, |c| c["signals"][0]["severity"] == "critical").await;
        assert_eq!(ctx["signals"].as_array().unwrap().len(), 1, "{ctx}");
        assert_eq!(ctx["principal_trust"].as_f64(), Some(0.0));
        let ctx = context_of(&api, ALICE, |c| c["signals"] == json!([])).await;
        assert_eq!(
            ctx["principal_trust"].as_f64(),
            Some(100.0),
            "expired: trust back"
        );

        // Readers list them (all of them with active=false).
        let (status, text) = http_get(&reader, "/v1/signals?tenant_id=acme&active=false").await;
        assert_eq!(status, 200, "{text}");
        let listed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(listed["result"].as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed["result"][0]["received_via"], "http");

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn signals_from_kafka_reach_stream_decisions_and_malformed_ones_are_dead_letters() {
    block_on(async {
        let env = signals_env("signals_kafka").await;
        let engine = env.start().await;
        let topic = env.config.signals.kafka_topic.clone();
        let kafka = producer(&env.config.kafka).unwrap();
        let messages = vec![
            (
                "a".to_owned(),
                signal(MALLORY, "critical", "gd-7").to_string().into_bytes(),
            ),
            (
                "b".to_owned(),
                br#"{"tenant_id": "acme", "subject_kind": "robot"}"#.to_vec(),
            ),
        ];
        produce_all(&kafka, &topic, &messages).await.unwrap();
        let reason: String = {
            let until = Instant::now() + Duration::from_secs(30);
            loop {
                let found: Option<String> =
                    sqlx::query_scalar("SELECT reason FROM dead_letters WHERE topic = $1")
                        .bind(&topic)
                        .fetch_optional(&env.pool)
                        .await
                        .unwrap();
                if let Some(r) = found {
                    break r;
                }
                assert!(
                    Instant::now() < until,
                    "no dead letter for the malformed signal"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        assert!(reason.starts_with("trust signal refused"), "{reason}");
        env.expect_count(
            "SELECT count(*) FROM trust_signals WHERE received_via = 'kafka'",
            1,
            Duration::from_secs(30),
        )
        .await;
        // Mallory's next console login: untrusted while the critical signal lasts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        env.produce(&[(
            ACME_ACCOUNT,
            common::cloudtrail_by(
                "after-signal",
                "ConsoleLogin",
                Some("Yes"),
                ACME_ACCOUNT,
                "mallory",
            ),
        )])
        .await;
        env.expect_count(
            "SELECT count(*) FROM decisions WHERE event_id = 'after-signal'",
            1,
            Duration::from_secs(30),
        )
        .await;
        let reasons: Value = sqlx::query_scalar(
            "SELECT result->'reasons' FROM decisions WHERE event_id = 'after-signal'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert!(reasons.to_string().contains("untrusted (0)"), "{reasons}");
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
