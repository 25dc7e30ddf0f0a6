//! The reference agent (`portcullis agent run`, the real binary) against a running engine and
//! the real Mosquitto: it bootstraps, keeps its policy on disk, applies every version in order
//! (also those published while it was stopped, after a restart that skips bootstrap), refuses
//! forged, unsigned and replayed policy, and answers decisions locally, also with the broker
//! gone.

use std::path::Path;
use std::time::Duration;

use crate::common;
use crate::common::agent::{spawn_agent, RunningAgent};
use crate::common::{post_json, TestEnv};
use portcullis::distribution::{load_signing_key, publish_version, NewVersion};
use portcullis::runtime::block_on;
use portcullis_engine::distribution::{PolicySigner, SegmentId, SEGMENT_POLICY_TYPE};
use portcullis_engine::TenantId;
use serde_json::{json, Value};

async fn publish(api: &common::Api, rule: &str) -> u64 {
    let body = json!({"modules": {"p.rego": format!("package segments.hr\ndefault allow := false\n{rule}")}});
    let (status, answer) = post_json(api, "/v1/segments/acme/hr/versions", &body).await;
    assert_eq!(status, 201, "{answer}");
    answer["result"]["version"].as_u64().unwrap()
}

async fn with_rules(env: &TestEnv, api: &common::Api) {
    let rule = json!({"tenant_id": "acme", "group": "HR", "segment_id": "hr"});
    assert_eq!(post_json(api, "/v1/segment-rules", &rule).await.0, 201);
    let _ = env;
}

/// An engine with the HR rule and a first version `rule`, and an agent that has applied it.
async fn hr_agent(
    env: &TestEnv,
    id: &str,
    dir: &Path,
    rule: &str,
) -> (common::Running, common::Api, RunningAgent) {
    let engine = env.start().await;
    let api = env.api(engine.http_addr());
    with_rules(env, &api).await;
    publish(&api, rule).await;
    let agent = spawn_agent(env, id, &dir.join(id));
    agent.wait_applied("hr", 1).await;
    (engine, api, agent)
}

#[test]
fn an_agent_bootstraps_enforces_locally_and_catches_up_in_order_after_a_restart() {
    block_on(async {
        let env = TestEnv::new("agent_run").await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        with_rules(&env, &api).await;
        publish(&api, "allow if input.action == \"read\"").await;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("laptop-7");

        let agent = spawn_agent(&env, "laptop-7", &state);
        agent.wait_applied("hr", 1).await;
        assert!(agent.log().contains("bootstrapping"), "{}", agent.log());
        assert_eq!(
            agent.decide("hr/allow", json!({"action": "read"})).await,
            true
        );
        assert_eq!(
            agent.decide("hr/allow", json!({"action": "write"})).await,
            false
        );
        // A new version reaches it live.
        publish(&api, "allow if input.action in {\"read\", \"write\"}").await;
        agent.wait_applied("hr", 2).await;
        assert_eq!(
            agent.decide("hr/allow", json!({"action": "write"})).await,
            true
        );
        assert!(state.join("segments/hr.json").exists(), "kept on disk");
        // The engine records what it applies.
        env.wait_at_least(
            "SELECT count(*) FROM agent_segments WHERE agent_id = 'laptop-7' AND applied_version = 2",
            1,
            Duration::from_secs(10),
        )
        .await;

        // An engine restart replays the agent's retained status: its state, not a sighting.
        let seen = "SELECT (extract(epoch FROM last_seen_at) * 1e6)::bigint FROM agents WHERE agent_id = 'laptop-7'";
        let before = env.count(seen).await;
        engine.stop().await.unwrap();
        sqlx::query("UPDATE agents SET online = false WHERE agent_id = 'laptop-7'")
            .execute(&env.pool)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        env.wait_at_least(
            "SELECT count(*) FROM agents WHERE agent_id = 'laptop-7' AND online",
            1,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(
            env.count(seen).await,
            before,
            "last seen is not the engine's restart"
        );

        // Stopped (killed), three versions go out, and it starts again from its cache.
        drop(agent);
        for n in 3..=5 {
            publish(&api, &format!("allow if input.level >= {n}")).await;
        }
        let agent = spawn_agent(&env, "laptop-7", &state);
        agent.wait_applied("hr", 5).await;
        let log = agent.log();
        assert!(
            log.contains("found 1 segments on disk, skipping bootstrap"),
            "{log}"
        );
        assert!(log.contains("waiting for queued messages"), "{log}");
        agent.assert_applied_in_order("hr", 3..=5).await;
        assert_eq!(agent.decide("hr/allow", json!({"level": 5})).await, true);
        assert_eq!(agent.decide("hr/allow", json!({"level": 4})).await, false);
        drop(agent);
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn forged_unsigned_and_replayed_policy_is_refused_by_the_agent() {
    block_on(async {
        let env = TestEnv::new("agent_forged").await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        with_rules(&env, &api).await;
        publish(&api, "allow if input.action == \"read\"").await;
        publish(&api, "allow if false").await;
        let dir = tempfile::tempdir().unwrap();
        let agent = spawn_agent(&env, "kiosk-2", &dir.path().join("kiosk-2"));
        agent.wait_applied("hr", 2).await;
        // Subscribed to the segment's topic once its retained copy has come and been ignored.
        agent.wait_log("hr v2 already applied", 1).await;

        // What a compromised broker, or anyone who may publish there, could push.
        let topic = format!("{}/acme/segments/hr/policy", env.config.mqtt.topic_prefix);
        let doc = |version: u64| {
            json!({"protocol": 1, "tenant_id": "acme", "segment_id": "hr", "version": version,
                   "modules": {"p.rego": "package segments.hr\nallow := true"}, "data": {},
                   "published_at": "2026-12-02T00:00:00Z"})
        };
        let mallory = PolicySigner::from_secret(&[66; 32]);
        let forged = mallory.sign(SEGMENT_POLICY_TYPE, serde_json::to_vec(&doc(3)).unwrap());
        let mut unsigned = forged.clone();
        unsigned.signatures.clear();
        let v1: Value = {
            let (_, body) =
                common::request(&api, "GET", "/v1/segments/acme/hr/versions/1", &[], b"").await;
            serde_json::from_str::<Value>(&body).unwrap()["result"]["envelope"].clone()
        };
        env.publish(&[
            (topic.clone(), serde_json::to_vec(&forged).unwrap()),
            (topic.clone(), serde_json::to_vec(&unsigned).unwrap()),
            (topic.clone(), serde_json::to_vec(&v1).unwrap()),
            (topic.clone(), b"{not json".to_vec()),
        ])
        .await;
        agent.wait_log("refused a segment policy", 2).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(agent.applied().await["hr"], 2, "still v2: {}", agent.log());
        assert_eq!(
            agent.decide("hr/allow", json!({"action": "read"})).await,
            false
        );
        drop(agent);
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn an_agent_keeps_deciding_with_the_broker_gone() {
    block_on(async {
        let (env, private, broker) = TestEnv::on_private_broker("agent_offline").await;
        let (engine, _, agent) = hr_agent(
            &env,
            "van-3",
            private.dir(),
            "allow if input.action == \"read\"",
        )
        .await;

        drop(broker);
        agent.wait_log("broker unreachable", 1).await;
        assert_eq!(
            agent.decide("hr/allow", json!({"action": "read"})).await,
            true
        );
        assert_eq!(
            agent.decide("hr/allow", json!({"action": "delete"})).await,
            false
        );
        drop(agent);
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn a_broker_restart_mid_stream_leaves_the_agent_with_no_gap() {
    block_on(async {
        // A broker that keeps nothing: its restart loses every session and queued message.
        let (mut env, private, broker) = TestEnv::on_private_broker("agent_broker_restart").await;
        env.config.distribution.resend_secs = 1;
        let (engine, api, agent) =
            hr_agent(&env, "rig-9", private.dir(), "allow if input.level >= 1").await;

        drop(broker);
        for n in 2..=4 {
            publish(&api, &format!("allow if input.level >= {n}")).await;
        }
        let _broker = private.start();
        // The agent finds its session gone, asks for what it lacks, and applies all of it.
        agent.wait_applied("hr", 4).await;
        agent.assert_applied_in_order("hr", 2..=4).await;
        assert_eq!(agent.decide("hr/allow", json!({"level": 3})).await, false);
        assert_eq!(agent.decide("hr/allow", json!({"level": 4})).await, true);
        drop(agent);
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn an_engine_restart_mid_stream_leaves_a_connected_agent_with_every_version_in_order() {
    block_on(async {
        let env = TestEnv::new("agent_engine_restart").await;
        let dir = tempfile::tempdir().unwrap();
        let (engine, _, agent) = hr_agent(&env, "laptop-5", dir.path(), "allow if true").await;

        // The engine goes away; the agent stays connected. A version is committed meanwhile
        // (the CLI, or another engine's API, would do this): stored, not sent.
        engine.stop().await.unwrap();
        let signer = load_signing_key(&env.config.distribution.signing_key_file)
            .unwrap()
            .unwrap();
        let v2 = NewVersion {
            tenant: TenantId::parse("acme").unwrap(),
            segment: SegmentId::parse("hr").unwrap(),
            modules: [(
                "p.rego".to_owned(),
                "package segments.hr\ndefault allow := false\nallow if input.action == \"read\""
                    .to_owned(),
            )]
            .into(),
            data: json!({}),
            published_by: "test".into(),
        };
        publish_version(
            &env.pool,
            v2,
            &signer,
            env.config.distribution.max_policy_bytes,
        )
        .await
        .unwrap();

        // The engine returns: the version is sent, then a new one published live.
        let engine = env.start().await;
        agent.wait_applied("hr", 2).await;
        assert_eq!(
            agent.decide("hr/allow", json!({"action": "write"})).await,
            false
        );
        publish(
            &env.api(engine.http_addr()),
            "allow if input.action != \"delete\"",
        )
        .await;
        agent.wait_applied("hr", 3).await;
        agent.assert_applied_in_order("hr", 1..=3).await;
        // The new engine's session for it records what it applies.
        env.wait_at_least(
            "SELECT count(*) FROM agent_segments WHERE agent_id = 'laptop-5' AND applied_version = 3",
            1,
            Duration::from_secs(10),
        )
        .await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn a_rule_added_or_removed_reaches_the_connected_agent_without_a_restart() {
    block_on(async {
        let env = TestEnv::new("agent_rules").await;
        let dir = tempfile::tempdir().unwrap();
        let (engine, api, agent) = hr_agent(&env, "laptop-6", dir.path(), "allow if true").await;
        let laptops = json!({"modules": {"l.rego": "package segments.laptops\nusb := false"}});
        let (status, body) = post_json(&api, "/v1/segments/acme/laptops/versions", &laptops).await;
        assert_eq!(status, 201, "{body}");

        // Its group "laptops" now gets a segment: it is told, subscribes and applies it.
        let rule = json!({"tenant_id": "acme", "group": "laptops", "segment_id": "laptops"});
        assert_eq!(post_json(&api, "/v1/segment-rules", &rule).await.0, 201);
        agent.wait_applied("laptops", 1).await;
        // And it follows that segment live from then on.
        let (status, body) = post_json(
            &api,
            "/v1/segments/acme/laptops/versions",
            &json!({"modules": {"l.rego": "package segments.laptops\nusb := true"}}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        agent.wait_applied("laptops", 2).await;

        // HR no longer gets hr: it drops that policy.
        let hr = json!({"tenant_id": "acme", "group": "HR", "segment_id": "hr"});
        let (status, text) = common::request(
            &api,
            "DELETE",
            "/v1/segment-rules",
            &[],
            &serde_json::to_vec(&hr).unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        agent.wait_log("no longer in segment hr", 1).await;
        let applied = agent.applied().await;
        assert_eq!(applied, json!({"laptops": 2}), "{}", agent.log());
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
