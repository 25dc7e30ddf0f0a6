//! Protection levels against the running engine: a unit's arrivals (decision API queries,
//! stream events) raise its level past the thresholds at once, policy reads the level and ρ,
//! receipts carry it, every change is stored, and the level relaxes a step at a time when the
//! load falls.

use std::time::{Duration, Instant};

use portcullis::runtime::block_on;
use serde_json::{json, Value};

use crate::common::{self, http_get, post_json, request, TestEnv, ACME_ACCOUNT};

const PROBE: &str = "/v1/data/tenants/acme/probe/context";

async fn protection_env(tag: &str) -> TestEnv {
    let mut env = TestEnv::new(tag).await;
    env.config.protection.tick_ms = 200;
    env.config.protection.refresh_ms = 200;
    env.config.protection.sample_secs = 1;
    // A rule that shows what policy is told.
    std::fs::write(
        env.bundles_dir().join("acme/probe.rego"),
        "package tenants.acme.probe\nimport rego.v1\ncontext := input.context\n",
    )
    .unwrap();
    env
}

/// The levels `unit` of acme went through, oldest first.
async fn levels(env: &TestEnv, unit: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT to_level FROM protection_transitions WHERE tenant_id = 'acme' AND unit = $1 ORDER BY at",
    )
    .bind(unit)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

async fn wait_levels(env: &TestEnv, unit: &str, want: &[&str]) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = levels(env, unit).await;
        if seen == want {
            return;
        }
        assert!(
            Instant::now() < until,
            "{unit}: levels {seen:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn load_on_the_decision_api_raises_protection_policy_sees_it_and_it_relaxes() {
    block_on(async {
        let mut env = protection_env("protection_api").await;
        env.config.kafka.enabled = false;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let reader = api.with_token(Some(&env.token(&["read:acme"]).await));

        // No unit: permissive, ρ 0.
        let (_, body) = post_json(&api, PROBE, &json!({"input": {}})).await;
        assert_eq!(body["result"]["protection_level"], "permissive", "{body}");
        assert_eq!(body["result"]["protection_unit"], Value::Null);

        // A unit over acme's decision API, serving 20 queries a second; only admins set it.
        let unit = br#"{"selector": "api:data.tenants.acme.*", "capacity_per_sec": 20}"#;
        let (status, _) = request(&reader, "PUT", "/v1/protection/acme/api", &[], unit).await;
        assert_eq!(status, 403);
        let (status, text) = request(
            &api,
            "PUT",
            "/v1/protection/acme/api",
            &[],
            b"{\"selector\": \"a*b\", \"capacity_per_sec\": 1}",
        )
        .await;
        assert_eq!(status, 400, "{text}");
        let (status, text) = request(&api, "PUT", "/v1/protection/acme/api", &[], unit).await;
        assert_eq!(status, 200, "{text}");

        // A burst far above capacity: read-only at the next tick.
        for _ in 0..150 {
            let (status, _) = post_json(&api, PROBE, &json!({"input": {}})).await;
            assert_eq!(status, 200);
        }
        wait_levels(&env, "api", &["read_only"]).await;
        let (_, body) = post_json(&api, PROBE, &json!({"input": {}})).await;
        let context = &body["result"];
        assert_eq!(context["protection_level"], "read_only", "{body}");
        assert_eq!(context["protection_unit"], "api");
        assert!(context["rho"].as_f64().unwrap() >= 0.9, "{context}");
        let decision = body["decision_id"].as_str().unwrap().to_owned();

        // Readers see the unit as it stands, and its history.
        let (status, text) = http_get(&reader, "/v1/protection?tenant_id=acme").await;
        assert_eq!(status, 200, "{text}");
        let units: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(units["result"][0]["unit"], "api");
        assert_eq!(units["result"][0]["capacity_per_sec"], 20.0);

        // Quiet: down one step at a time, below ρ 0.5.
        wait_levels(
            &env,
            "api",
            &["read_only", "require_approval", "permissive"],
        )
        .await;
        let (_, text) = http_get(&reader, "/v1/protection-transitions?tenant_id=acme").await;
        let changes: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(changes["result"][0]["to_level"], "permissive");
        assert_eq!(changes["result"][2]["from_level"], "permissive");
        assert!(changes["result"][2]["rho"].as_f64().unwrap() >= 0.9);
        let (_, text) = http_get(&reader, "/v1/protection/acme/api/samples").await;
        let samples: Value = serde_json::from_str(&text).unwrap();
        assert!(
            !samples["result"].as_array().unwrap().is_empty(),
            "{samples}"
        );

        // The query answered while read-only has that level in its receipt.
        let receipt = common::receipt_of(&env, &decision).await;
        assert_eq!(receipt["protection_level"], "read_only");

        // Removed: permissive again, from the CLI's view too.
        let (code, out, _) = env.cli(&["protection", "transitions", "--tenant", "acme"]);
        assert_eq!(code, 0);
        assert!(out.contains("permissive -> read_only"), "{out}");
        let (status, _) = request(&api, "DELETE", "/v1/protection/acme/api", &[], b"").await;
        assert_eq!(status, 204);
        let (_, body) = post_json(&api, PROBE, &json!({"input": {}})).await;
        assert_eq!(body["result"]["protection_unit"], Value::Null, "{body}");

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn a_burst_of_stream_events_makes_their_unit_read_only_in_policy_and_receipts() {
    block_on(async {
        let mut env = protection_env("protection_stream").await;
        // Ticks of a second: 40 events against a capacity of 2 stay read-only for about ten
        // (rho must fall from 20 below 0.5 at 0.7 a tick), long after the next event.
        env.config.protection.tick_ms = 1000;
        let (code, _, err) = env.cli(&[
            "protection",
            "set",
            "--tenant",
            "acme",
            "--unit",
            "logins",
            "--selector",
            "cloudtrail:signin.amazonaws.com",
            "--capacity",
            "2",
        ]);
        assert_eq!(code, 0, "{err}");
        let engine = env.start().await;
        let burst: Vec<(&str, Vec<u8>)> = (0..40)
            .map(|i| {
                (
                    ACME_ACCOUNT,
                    common::cloudtrail_by(
                        &format!("burst-{i}"),
                        "ConsoleLogin",
                        Some("Yes"),
                        ACME_ACCOUNT,
                        "alice",
                    ),
                )
            })
            .collect();
        env.produce(&burst).await;
        env.expect_count(
            "SELECT count(*) FROM decisions WHERE event_id LIKE 'burst-%'",
            40,
            Duration::from_secs(30),
        )
        .await;
        wait_levels(&env, "logins", &["read_only"]).await;
        env.produce(&[(
            ACME_ACCOUNT,
            common::cloudtrail_by(
                "after-burst",
                "ConsoleLogin",
                Some("Yes"),
                ACME_ACCOUNT,
                "alice",
            ),
        )])
        .await;
        env.expect_count(
            "SELECT count(*) FROM decisions WHERE event_id = 'after-burst'",
            1,
            Duration::from_secs(30),
        )
        .await;
        let level: Option<String> = sqlx::query_scalar(
            "SELECT (body::jsonb)->>'protection_level' FROM receipts WHERE subject = 'after-burst'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(level.as_deref(), Some("read_only"));
        // acme's policy refuses changes in a read-only unit, and says so.
        let reasons: Value = sqlx::query_scalar(
            "SELECT result->'reasons' FROM decisions WHERE event_id = 'after-burst'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert!(
            reasons
                .to_string()
                .contains("unit logins is read-only under load"),
            "{reasons}"
        );
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn a_signal_about_a_unit_holds_its_level_up_while_it_lasts() {
    block_on(async {
        let mut env = protection_env("protection_held").await;
        env.config.kafka.enabled = false;
        env.config.signals.refresh_ms = 200;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let unit = br#"{"selector": "api:data.tenants.acme.*", "capacity_per_sec": 1000}"#;
        let (status, text) = request(&api, "PUT", "/v1/protection/acme/api", &[], unit).await;
        assert_eq!(status, 200, "{text}");
        let level = || async {
            let (_, body) = post_json(&api, PROBE, &json!({"input": {}})).await;
            body["result"]["protection_level"].clone()
        };
        assert_eq!(level().await, "permissive");

        let signal = |severity: &str, id: &str, ttl: i64| {
            json!({"tenant_id": "acme", "subject_kind": "unit", "subject": "api",
                   "kind": "credential_stuffing", "severity": severity, "source": "waf",
                   "id": id, "ttl_secs": ttl})
        };
        // A critical signal: read-only at once on this engine, whatever the load.
        let (status, text) = post_json(&api, "/v1/signals", &signal("critical", "w1", 3600)).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(level().await, "read_only");
        // Policy sees the signal itself, and trust is not what it lowers.
        let (_, body) = post_json(&api, PROBE, &json!({"input": {"principal": "alice"}})).await;
        let context = &body["result"];
        assert_eq!(context["signals"][0]["about"], "unit", "{context}");
        assert_eq!(context["signals"][0]["kind"], "credential_stuffing");
        assert_eq!(context["principal_trust"], 100.0, "{context}");
        let (_, text) = http_get(&api, "/v1/protection?tenant_id=acme").await;
        let units: Value = serde_json::from_str(&text).unwrap();
        let u = &units["result"][0];
        assert_eq!(
            (&u["level"], &u["measured_level"], &u["held_level"]),
            (
                &json!("read_only"),
                &json!("permissive"),
                &json!("read_only")
            ),
            "{u}"
        );
        assert_eq!(u["signals"][0]["source"], "waf");
        // Another tenant's unit of the same name is not held.
        let (status, _) = request(
            &api,
            "PUT",
            "/v1/protection/globex/api",
            &[],
            br#"{"selector": "api:*", "capacity_per_sec": 1000}"#,
        )
        .await;
        assert_eq!(status, 200);
        let (_, body) =
            post_json(&api, "/v1/data/tenants/globex/allow", &json!({"input": {}})).await;
        let decision = body["decision_id"].as_str().unwrap().to_owned();
        let receipt_level = || async {
            let until = Instant::now() + Duration::from_secs(30);
            loop {
                let level: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT body::jsonb->>'protection_level' FROM receipts WHERE decision_id = $1",
                )
                .bind(uuid::Uuid::parse_str(&decision).unwrap())
                .fetch_optional(&env.pool)
                .await
                .unwrap();
                if let Some(level) = level {
                    return level;
                }
                assert!(Instant::now() < until, "no receipt for {decision}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        assert_eq!(receipt_level().await.as_deref(), Some("permissive"));

        // The same signal lowered to high: require_approval; then ended: released.
        let (status, _) = post_json(&api, "/v1/signals", &signal("high", "w1", 3600)).await;
        assert_eq!(status, 200);
        assert_eq!(level().await, "require_approval");
        let (status, _) = post_json(&api, "/v1/signals", &signal("medium", "w1", 1)).await;
        assert_eq!(status, 200);
        assert_eq!(level().await, "permissive", "medium holds nothing");
        let (status, _) = post_json(&api, "/v1/signals", &signal("critical", "w1", 1)).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(level().await, "permissive", "ended");
        let (_, text) = http_get(&api, "/v1/protection?tenant_id=acme").await;
        let units: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(units["result"][0]["held_level"], Value::Null, "{units}");
        assert_eq!(units["result"][0]["signals"], json!([]), "{units}");
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
