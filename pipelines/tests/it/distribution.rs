//! Segment policy distribution on the real services: versions published through the API and
//! the CLI reach MQTT subscribers of the segment's topic signed, in order and retained; a
//! version committed while no engine ran is sent when one starts; the admin API checks scopes
//! and refuses broken policy.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common;
use crate::common::{post_json, request, TestEnv};
use portcullis::distribution::load_signing_key;
use portcullis::runtime::block_on;
use portcullis_engine::distribution::{
    SegmentPolicy, SignedEnvelope, TrustedKeys, SEGMENT_POLICY_TYPE,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// An MQTT client subscribed to one filter, collecting what arrives.
struct Subscriber {
    rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    client: AsyncClient,
}

impl Subscriber {
    async fn new(env: &TestEnv, filter: &str) -> Self {
        let id = format!("pc-test-sub-{}", uuid::Uuid::new_v4().simple());
        let mut opts = MqttOptions::new(id, &env.config.mqtt.host, env.config.mqtt.port);
        opts.set_max_packet_size(4 * 1024 * 1024, 64 * 1024);
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed, is_subscribed) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut subscribed = Some(subscribed);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(s) = subscribed.take() {
                            let _ = s.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic, p.payload.to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), is_subscribed)
            .await
            .expect("subscribed within 10 s")
            .unwrap();
        Self { rx, client }
    }

    async fn next(&mut self) -> (String, Vec<u8>) {
        tokio::time::timeout(Duration::from_secs(20), self.rx.recv())
            .await
            .expect("a segment policy version within 20 s")
            .expect("subscriber running")
    }

    async fn next_json(&mut self) -> Value {
        serde_json::from_slice(&self.next().await.1).expect("JSON")
    }

    async fn quiet_for(&mut self, d: Duration) -> bool {
        tokio::time::timeout(d, self.rx.recv()).await.is_err()
    }

    async fn close(self) {
        let _ = self.client.disconnect().await;
    }
}

/// Verifies an envelope with the engine's public key, as an agent does, and reads its document.
fn open(env: &TestEnv, payload: &[u8]) -> SegmentPolicy {
    let signer = load_signing_key(&env.config.distribution.signing_key_file)
        .unwrap()
        .expect("the engine made its signing key");
    let mut keys = TrustedKeys::default();
    keys.trust_public(&signer.public_key()).unwrap();
    let envelope: SignedEnvelope = serde_json::from_slice(payload).expect("a DSSE envelope");
    let document = keys
        .verify(&envelope, SEGMENT_POLICY_TYPE)
        .expect("signed by the engine's key");
    SegmentPolicy::from_payload(document).expect("a segment policy document")
}

fn policy(rule: &str) -> serde_json::Value {
    json!({
        "modules": {"usb.rego": format!("package segments.hr\ndefault allow := false\n{rule}")},
        "data": {"blocked": ["usb_mount"]},
    })
}

#[test]
fn versions_published_through_the_api_reach_agents_signed_in_order_and_retained() {
    block_on(async {
        let env = TestEnv::new("dist_send").await;
        let topic = |segment: &str| {
            format!(
                "{}/acme/segments/{segment}/policy",
                env.config.mqtt.topic_prefix
            )
        };
        let filter = format!("{}/acme/segments/+/policy", env.config.mqtt.topic_prefix);
        let mut agent = Subscriber::new(&env, &filter).await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let versions = "/v1/segments/acme/hr/versions";

        let (status, body) =
            post_json(&api, versions, &policy("allow if input.action == \"read\"")).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["result"]["version"], 1);
        assert!(body["result"]["key_id"]
            .as_str()
            .unwrap()
            .starts_with("ed25519:"));
        let (t, payload) = agent.next().await;
        assert_eq!(t, topic("hr"));
        let doc = open(&env, &payload);
        assert_eq!(doc.version, 1);
        assert_eq!(doc.tenant_id.as_str(), "acme");
        assert!(doc.modules["usb.rego"].contains("input.action == \"read\""));
        assert_eq!(doc.data, json!({"blocked": ["usb_mount"]}));
        assert_eq!(body["result"]["digest"], doc.digest());

        // Two more at once: they arrive in order, each once.
        let (write, none) = (
            policy("allow if input.action == \"write\""),
            policy("allow if false"),
        );
        let (a, b) = tokio::join!(
            post_json(&api, versions, &write),
            post_json(&api, versions, &none)
        );
        assert_eq!((a.0, b.0), (201, 201), "{} {}", a.1, b.1);
        let docs: Vec<SegmentPolicy> = [agent.next().await, agent.next().await]
            .iter()
            .map(|(_, p)| open(&env, p))
            .collect();
        assert_eq!(docs.iter().map(|d| d.version).collect::<Vec<_>>(), [2, 3]);
        // The latest policy again: no new version, nothing sent.
        let latest = json!({"modules": docs[1].modules, "data": docs[1].data});
        let (status, body) = post_json(&api, versions, &latest).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (
                body["unchanged"].as_bool(),
                body["result"]["version"].as_u64()
            ),
            (Some(true), Some(3))
        );
        assert!(
            agent.quiet_for(Duration::from_millis(500)).await,
            "nothing sent twice"
        );
        let sent = env
            .expect_count(
                "SELECT count(*) FROM segment_versions WHERE sent_at IS NOT NULL",
                3,
                Duration::from_secs(10),
            )
            .await;
        assert_eq!(sent, 3, "every version recorded as sent");

        // A subscriber that comes later gets the latest version at once (retained).
        let mut late = Subscriber::new(&env, &filter).await;
        let (_, payload) = late.next().await;
        assert_eq!(open(&env, &payload).version, 3);
        assert!(late.quiet_for(Duration::from_millis(300)).await);
        late.close().await;

        // What the API shows.
        let (status, body) = request(&api, "GET", versions, &[], b"").await;
        assert_eq!(status, 200, "{body}");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        let numbers: Vec<u64> = list["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, [3, 2, 1], "newest first");
        assert!(list["result"][0]["sent_at"].is_string());
        let (status, body) = request(&api, "GET", &format!("{versions}/2"), &[], b"").await;
        assert_eq!(status, 200, "{body}");
        let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            detail["result"]["modules"]["usb.rego"],
            docs[0].modules["usb.rego"]
        );
        assert_eq!(
            detail["result"]["envelope"]["payloadType"],
            SEGMENT_POLICY_TYPE
        );
        let (status, _) = request(&api, "GET", &format!("{versions}/9"), &[], b"").await;
        assert_eq!(status, 404);
        let (status, body) = request(&api, "GET", "/v1/segments", &[], b"").await;
        assert_eq!(status, 200, "{body}");
        let segments: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(segments["result"][0]["segment_id"], "hr");
        assert_eq!(segments["result"][0]["latest_version"], 3);

        agent.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn broken_or_foreign_policy_and_missing_scopes_are_refused_before_anything_is_sent() {
    block_on(async {
        let env = TestEnv::new("dist_refuse").await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let versions = "/v1/segments/acme/hr/versions";
        let refused = [
            (
                json!({"modules": {"p.rego": "package segments.hr\nallow if {"}}),
                400,
                "p.rego",
            ),
            (
                json!({"modules": {"p.rego": "package segments.finance\nx := 1"}}),
                400,
                "segments.hr",
            ),
            (json!({"modules": {}}), 400, "module"),
            (
                json!({"modules": {"p.rego": "package segments.hr\nx := 1"}, "data": [1]}),
                400,
                "data",
            ),
            (
                json!({"modules": {"p.rego": "package segments.hr\nx := 1"}, "extra": 1}),
                400,
                "extra",
            ),
            (
                json!({"modules": {"p.rego": "package segments.hr\nx := 1"},
                       "data": {"blob": "a".repeat(800_000)}}),
                413,
                "max_policy_bytes",
            ),
            (
                json!({"modules": {"../p.rego": "package segments.hr\nx := 1"}}),
                400,
                "module names",
            ),
            (
                json!({"modules": {"p.rego": "package segments.hr\nx := 1"}, "data": {"a": "\u{0}"}}),
                400,
                "NUL",
            ),
        ];
        for (body, want, says) in refused {
            let (status, text) = request(
                &api,
                "POST",
                versions,
                &[],
                &serde_json::to_vec(&body).unwrap(),
            )
            .await;
            assert_eq!(status, want, "{text}");
            assert!(text.contains(says), "{says:?} in {text}");
        }
        let (status, text) = request(&api, "POST", versions, &[], b"{not json").await;
        assert_eq!(status, 400, "{text}");
        let ok = serde_json::to_vec(&policy("allow if true")).unwrap();
        let (status, text) =
            request(&api, "POST", "/v1/segments/umbrella/hr/versions", &[], &ok).await;
        assert_eq!(status, 404, "{text}");
        let (status, text) = request(&api, "POST", "/v1/segments/acme/HR/versions", &[], &ok).await;
        assert_eq!(status, 400, "{text}");

        // Scopes: reading needs read:<tenant>, publishing admin:<tenant>.
        let reader = api.with_token(Some(&env.token(&["read:acme"]).await));
        let (status, text) = request(&reader, "POST", versions, &[], &ok).await;
        assert_eq!(status, 403, "{text}");
        let (status, _) = request(&reader, "GET", versions, &[], b"").await;
        assert_eq!(status, 200);
        let other = api.with_token(Some(&env.token(&["admin:globex"]).await));
        let (status, _) = request(&other, "GET", versions, &[], b"").await;
        assert_eq!(status, 403);
        let (status, body) = request(&other, "GET", "/v1/segments", &[], b"").await;
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["result"],
            json!([])
        );
        let tenant_admin = api.with_token(Some(&env.token(&["admin:acme"]).await));
        let (status, text) = request(&tenant_admin, "POST", versions, &[], &ok).await;
        assert_eq!(status, 201, "{text}");

        assert_eq!(
            env.count("SELECT count(*) FROM segment_versions").await,
            1,
            "only the valid publish made a version"
        );
        assert_eq!(env.count("SELECT latest_version FROM segments").await, 1);
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

/// Writes `source` as `hr.rego` in `dir` and publishes the directory with the CLI:
/// `(exit code, stdout, stderr)`.
fn publish_with_cli(env: &TestEnv, dir: &std::path::Path, source: &str) -> (i32, String, String) {
    std::fs::write(dir.join("hr.rego"), source).unwrap();
    env.cli(&[
        "segment",
        "publish",
        "--tenant",
        "acme",
        "--segment",
        "hr",
        dir.to_str().unwrap(),
    ])
}

#[test]
fn versions_committed_while_no_engine_ran_are_sent_in_order_when_one_starts() {
    block_on(async {
        let env = TestEnv::new("dist_restart").await;
        let dir = tempfile::tempdir().unwrap();
        // The CLI signs only with an existing key, never a new one agents do not trust.
        let (code, _, err) =
            publish_with_cli(&env, dir.path(), "package segments.hr\nlevel := 0\n");
        assert_ne!(code, 0);
        assert!(err.contains("no signing key"), "{err}");
        let (code, _, err) = env.cli(&["signing-key", "show"]);
        assert_eq!(code, 0, "{err}");
        // Three versions through the CLI, with no engine to send them: committed, unsent, as
        // after a crash between the commit and the send.
        for n in 1..=3 {
            let (code, out, err) = publish_with_cli(
                &env,
                dir.path(),
                &format!("package segments.hr\nlevel := {n}\n"),
            );
            assert_eq!(code, 0, "{err}");
            assert!(out.contains(&format!("version {n}")), "{out}");
        }
        assert_eq!(
            env.count("SELECT count(*) FROM segment_versions WHERE sent_at IS NULL")
                .await,
            3
        );
        let filter = format!("{}/acme/segments/hr/policy", env.config.mqtt.topic_prefix);
        let mut agent = Subscriber::new(&env, &filter).await;
        assert!(
            agent.quiet_for(Duration::from_millis(300)).await,
            "nothing was sent yet"
        );

        let engine = env.start().await;
        let mut got = Vec::new();
        for _ in 0..3 {
            let doc = open(&env, &agent.next().await.1);
            assert_eq!(
                doc.modules["hr.rego"],
                format!("package segments.hr\nlevel := {}\n", doc.version)
            );
            got.push(doc.version);
        }
        assert_eq!(got, [1, 2, 3], "in order, each once");
        assert_eq!(
            env.expect_count(
                "SELECT count(*) FROM segment_versions WHERE sent_at IS NOT NULL",
                3,
                Duration::from_secs(10)
            )
            .await,
            3
        );
        // The CLI shows the history with send times, and refuses broken policy.
        let (code, out, err) =
            env.cli(&["segment", "versions", "--tenant", "acme", "--segment", "hr"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), 4, "{out}");
        assert!(!out.contains(" - "), "every version has a send time: {out}");
        let (code, _, err) = publish_with_cli(&env, dir.path(), "package segments.hr\nlevel := \n");
        assert_ne!(code, 0);
        assert!(err.contains("hr.rego"), "{err}");
        assert!(agent.quiet_for(Duration::from_millis(500)).await);

        agent.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn segment_rules_are_managed_through_the_api_and_the_cli_within_scopes() {
    block_on(async {
        let env = TestEnv::new("dist_rules_api").await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let rule = json!({"tenant_id": "acme", "group": "HR", "segment_id": "hr"});
        let (status, body) = post_json(&api, "/v1/segment-rules", &rule).await;
        assert_eq!(status, 201, "{body}");
        let (code, _, err) = env.cli(&[
            "segment",
            "rule",
            "add",
            "--tenant",
            "acme",
            "--group",
            "HR-EU",
            "--segment",
            "eu",
        ]);
        assert_eq!(code, 0, "{err}");
        let (status, body) =
            request(&api, "GET", "/v1/segment-rules?tenant_id=acme", &[], b"").await;
        assert_eq!(status, 200);
        let rules: serde_json::Value = serde_json::from_str(&body).unwrap();
        let pairs: Vec<(String, String)> = rules["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["group_name"].as_str().unwrap().into(),
                    r["segment_id"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            [("HR".into(), "hr".into()), ("HR-EU".into(), "eu".into())]
        );
        // A segment with a rule and no version yet is listed with version 0.
        let (_, body) = request(&api, "GET", "/v1/segments?tenant_id=acme", &[], b"").await;
        let segments: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(segments["result"][0]["segment_id"], "eu");
        assert_eq!(segments["result"][0]["latest_version"], 0);
        assert_eq!(segments["result"][1]["groups"], json!(["HR"]));

        let reader = api.with_token(Some(&env.token(&["read:acme"]).await));
        let (status, _) = request(
            &reader,
            "POST",
            "/v1/segment-rules",
            &[],
            &serde_json::to_vec(&rule).unwrap(),
        )
        .await;
        assert_eq!(status, 403);
        let body = serde_json::to_vec(&rule).unwrap();
        let (status, _) = request(&api, "DELETE", "/v1/segment-rules", &[], &body).await;
        assert_eq!(status, 200);
        let (status, _) = request(&api, "DELETE", "/v1/segment-rules", &[], &body).await;
        assert_eq!(status, 404);
        let (code, out, _) = env.cli(&["segment", "rule", "list", "--tenant", "acme"]);
        assert_eq!(code, 0);
        assert!(out.contains("HR-EU") && !out.contains("HR  "), "{out}");
        let (status, body) = request(&api, "GET", "/v1/agents?tenant_id=acme", &[], b"").await;
        assert_eq!(status, 200, "{body}");
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn versions_published_while_the_broker_is_away_are_sent_in_order_when_it_returns() {
    block_on(async {
        let (mut env, private, broker) = TestEnv::on_private_broker("dist_broker").await;
        env.config.distribution.resend_secs = 1;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let versions = "/v1/segments/acme/hr/versions";

        drop(broker); // the broker goes away
        for rule in ["allow if input.action == \"read\"", "allow if false"] {
            let (status, body) = post_json(&api, versions, &policy(rule)).await;
            assert_eq!(status, 201, "publishing needs only Postgres: {body}");
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            env.count("SELECT count(*) FROM segment_versions WHERE sent_at IS NULL")
                .await,
            2,
            "nothing is recorded as sent while the broker is away"
        );

        let _broker = private.start();
        let filter = format!("{}/acme/segments/hr/policy", env.config.mqtt.topic_prefix);
        let mut agent = Subscriber::new(&env, &filter).await;
        // Sent in order once the broker is back: live (v1 then v2) or, had the sends beaten
        // our subscription, the retained latest.
        let mut seen = Vec::new();
        while seen.last() != Some(&2) {
            seen.push(open(&env, &agent.next().await.1).version);
        }
        assert!(seen == [1, 2] || seen == [2], "in order: {seen:?}");
        assert_eq!(
            env.expect_count(
                "SELECT count(*) FROM segment_versions WHERE sent_at IS NOT NULL",
                2,
                Duration::from_secs(10)
            )
            .await,
            2
        );
        agent.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn after_a_key_rotation_agents_trusting_both_keys_accept_old_and_new_versions() {
    block_on(async {
        let mut env = TestEnv::new("dist_rotate").await;
        let filter = format!("{}/acme/segments/hr/policy", env.config.mqtt.topic_prefix);
        let mut agent = Subscriber::new(&env, &filter).await;
        let publish = |api: common::Api| async move {
            let (status, body) = post_json(
                &api,
                "/v1/segments/acme/hr/versions",
                &policy("allow if true"),
            )
            .await;
            assert_eq!(status, 201, "{body}");
        };

        let engine = env.start().await;
        publish(env.api(engine.http_addr())).await;
        let old_envelope = agent.next().await.1;
        engine.stop().await.unwrap();
        let old = load_signing_key(&env.config.distribution.signing_key_file)
            .unwrap()
            .unwrap();

        // The operator makes a new key and points the engine at it.
        let new_file = env
            .config
            .distribution
            .signing_key_file
            .with_file_name("policy-signing-2027.key");
        env.config.distribution.signing_key_file = new_file.clone();
        let (code, out, err) = env.cli(&["signing-key", "show"]);
        assert_eq!(code, 0, "{err}");
        let engine = env.start().await;
        let new = load_signing_key(&new_file).unwrap().unwrap();
        assert!(
            out.contains(new.key_id()),
            "signing-key show names the new key: {out}"
        );
        assert_ne!(old.key_id(), new.key_id());
        publish(env.api(engine.http_addr())).await;
        // Had the first engine stopped between the broker's ack and recording v1 as sent, the
        // second sends v1 once more first (at least once; agents ignore a version they have).
        let new_envelope = loop {
            let (_, bytes) = agent.next().await;
            if bytes != old_envelope {
                break bytes;
            }
        };

        let envelope = |bytes: &[u8]| serde_json::from_slice::<SignedEnvelope>(bytes).unwrap();
        let (v1, v2) = (envelope(&old_envelope), envelope(&new_envelope));
        assert_eq!(v1.signatures[0].keyid, old.key_id());
        assert_eq!(v2.signatures[0].keyid, new.key_id());
        // During the overlap an agent trusts both: each version verifies.
        let mut both = TrustedKeys::default();
        both.trust_public(&old.public_key()).unwrap();
        both.trust_public(&new.public_key()).unwrap();
        for v in [&v1, &v2] {
            assert!(both.verify(v, SEGMENT_POLICY_TYPE).is_ok());
        }
        // An agent not yet told of the new key refuses the new version; one past the overlap
        // refuses what the old key signs.
        let mut only_old = TrustedKeys::default();
        only_old.trust_public(&old.public_key()).unwrap();
        assert!(only_old.verify(&v2, SEGMENT_POLICY_TYPE).is_err());
        both.distrust(old.key_id());
        assert!(both.verify(&v1, SEGMENT_POLICY_TYPE).is_err());
        assert!(both.verify(&v2, SEGMENT_POLICY_TYPE).is_ok());
        // The history says which key signed which version.
        assert_eq!(
            env.count(&format!(
                "SELECT count(*) FROM segment_versions WHERE key_id = '{}'",
                new.key_id()
            ))
            .await,
            1
        );

        agent.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn an_agents_events_are_answered_on_its_decisions_topic_once_committed() {
    block_on(async {
        let env = TestEnv::new("dist_verdicts").await;
        let p = env.config.mqtt.topic_prefix.clone();
        let mut laptop =
            Subscriber::new(&env, &format!("{p}/acme/agents/laptop-1/decisions")).await;
        let mut other = Subscriber::new(&env, &format!("{p}/acme/agents/laptop-2/decisions")).await;
        let engine = env.start().await;
        let topic = env.device_topic("acme", "laptop-1");
        env.publish(&[
            (topic.clone(), serde_json::to_vec(&json!({
                "id": "m1", "time": "2026-11-22T10:00:00Z", "user": "alice", "action": "read", "resource": {"type": "hr_files", "region": "EU"}
            })).unwrap()),
            (topic.clone(), serde_json::to_vec(&json!({
                "id": "m2", "time": "2026-11-22T10:00:01Z", "user": "mallory", "action": "delete", "resource": {"type": "hr_files", "region": "US"}
            })).unwrap()),
            (topic, b"not json at all".to_vec()),
        ])
        .await;
        let mut verdicts = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for _ in 0..2 {
            let (_, payload) = laptop.next().await;
            let v: Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(v["protocol"], 1, "{v}");
            assert!(
                v["decision_id"].is_string() && v["revision"].is_string(),
                "{v}"
            );
            let event = v["event_id"].as_str().unwrap().to_owned();
            ids.insert(event.clone(), v["decision_id"].as_str().unwrap().to_owned());
            verdicts.insert(event, v["allowed"].clone());
        }
        assert_eq!(
            verdicts,
            BTreeMap::from([
                ("laptop-1/m1".to_owned(), json!(true)),
                ("laptop-1/m2".to_owned(), json!(false)),
            ])
        );
        // Each is the stored decision (sent once it was committed).
        let stored: BTreeMap<String, String> = sqlx::query_as::<_, (String, String)>(
            "SELECT event_id, decision_id::text FROM decisions WHERE event_id LIKE 'laptop-1/%'",
        )
        .fetch_all(&env.pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
        assert_eq!(stored, ids);
        // A dead letter gets no verdict, and no other agent hears of these.
        assert!(laptop.quiet_for(Duration::from_millis(500)).await);
        assert!(other.quiet_for(Duration::from_millis(100)).await);
        laptop.close().await;
        other.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn an_agents_event_that_needs_approval_opens_a_request_and_the_agent_hears_the_answer() {
    block_on(async {
        let env = TestEnv::new("dist_approvals").await;
        let p = env.config.mqtt.topic_prefix.clone();
        let mut laptop =
            Subscriber::new(&env, &format!("{p}/acme/agents/laptop-1/decisions")).await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let topic = env.device_topic("acme", "laptop-1");
        let export = |id: &str| {
            (
                topic.clone(),
                serde_json::to_vec(&json!({
                    "id": id, "time": "2026-12-03T10:00:00Z", "user": "alice", "action": "export",
                    "resource": {"type": "hr_files", "region": "EU"}
                }))
                .unwrap(),
            )
        };

        // Two exports of the same thing: one request, which both verdicts name.
        env.publish(&[export("m1"), export("m2")]).await;
        let (v1, v2) = (laptop.next_json().await, laptop.next_json().await);
        for v in [&v1, &v2] {
            assert_eq!(
                (&v["type"], &v["outcome"], &v["allowed"]),
                (
                    &json!("decision"),
                    &json!("require_approval"),
                    &json!(false)
                ),
                "{v}"
            );
            assert_eq!(v["approval"]["status"], "pending", "{v}");
        }
        let id = v1["approval"]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            v2["approval"]["id"],
            id.as_str(),
            "joined the waiting request"
        );
        let stored: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
            "SELECT source, agent_id, status, principal FROM approvals WHERE tenant_id = 'acme'",
        )
        .fetch_all(&env.pool)
        .await
        .unwrap();
        assert_eq!(
            stored,
            [(
                "agent".to_owned(),
                Some("laptop-1".to_owned()),
                "pending".to_owned(),
                "alice".to_owned()
            )]
        );
        let resource: String = sqlx::query_scalar("SELECT resource FROM approvals")
            .fetch_one(&env.pool)
            .await
            .unwrap();
        assert_eq!(resource, "hr_files on laptop-1");

        // Another device whose user claims to be alice asks for itself: its own request.
        let mut other = Subscriber::new(&env, &format!("{p}/acme/agents/laptop-2/decisions")).await;
        let mut from_other = export("o1");
        from_other.0 = env.device_topic("acme", "laptop-2");
        env.publish(std::slice::from_ref(&from_other)).await;
        let o1 = other.next_json().await;
        let other_id = o1["approval"]["id"].as_str().unwrap().to_owned();
        assert_ne!(other_id, id, "{o1}");

        // An approver agrees: the agent hears it on the same topic; the next export is told
        // the approval that holds.
        let (status, body) = post_json(
            &api,
            &format!("/v1/approvals/{id}/approve"),
            &json!({"note": "quarterly report"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let answer = laptop.next_json().await;
        assert_eq!(
            (&answer["type"], &answer["status"], &answer["approval_id"]),
            (&json!("approval"), &json!("approved"), &json!(id)),
            "{answer}"
        );
        assert_eq!(answer["note"], "quarterly report");
        assert!(answer["grant_until"].is_string(), "{answer}");
        env.publish(&[export("m3")]).await;
        let v3 = laptop.next_json().await;
        assert_eq!(
            (
                &v3["outcome"],
                &v3["approval"]["status"],
                &v3["approval"]["id"]
            ),
            (&json!("require_approval"), &json!("approved"), &json!(id)),
            "{v3}"
        );
        // The answer has its receipt; the agent's events their own.
        env.wait_at_least(
            "SELECT count(*) FROM receipts WHERE tenant_id = 'acme' AND kind = 'approval'",
            1,
            Duration::from_secs(30),
        )
        .await;
        // The other device's request still waits: it heard nothing more.
        assert!(laptop.quiet_for(Duration::from_millis(300)).await);
        assert!(other.quiet_for(Duration::from_millis(100)).await);
        env.publish(&[from_other]).await;
        let o2 = other.next_json().await;
        assert_eq!(
            (&o2["approval"]["id"], &o2["approval"]["status"]),
            (&json!(other_id), &json!("pending")),
            "{o2}"
        );
        other.close().await;
        laptop.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
