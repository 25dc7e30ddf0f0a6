//! Agents on the real services: a hello is answered on the agent's config topic with its
//! segments' versions (only the latest at bootstrap, every one after what it applies when
//! catching up), signed; the agent is recorded with its groups and applied versions, online
//! and offline (by status, and by its MQTT last will when it vanishes); what cannot be read is
//! answered with why.

use std::time::Duration;

use crate::common::{post_json, request, TestEnv};
use portcullis::distribution::{load_signing_key, MAX_CATCH_UP};
use portcullis::runtime::block_on;
use portcullis_engine::distribution::{
    ConfigReply, SegmentPolicy, SignedEnvelope, TrustedKeys, SEGMENT_POLICY_TYPE,
};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde_json::json;
use tokio::sync::mpsc;

/// A bare agent: subscribed to its config topic, saying what the test tells it to.
struct Agent {
    client: AsyncClient,
    replies: mpsc::UnboundedReceiver<Vec<u8>>,
    task: tokio::task::JoinHandle<()>,
    base: String,
}

impl Agent {
    async fn connect(env: &TestEnv, tenant: &str, id: &str) -> Agent {
        let base = format!("{}/{tenant}/agents/{id}", env.config.mqtt.topic_prefix);
        let mut opts = MqttOptions::new(
            format!("pc-test-agent-{}-{id}", env.suffix),
            &env.config.mqtt.host,
            env.config.mqtt.port,
        );
        opts.set_max_packet_size(4 * 1024 * 1024, 64 * 1024)
            .set_keep_alive(Duration::from_secs(5))
            .set_last_will(LastWill::new(
                format!("{base}/status"),
                r#"{"protocol": 1, "online": false}"#,
                QoS::AtLeastOnce,
                false,
            ));
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        client
            .subscribe(format!("{base}/config"), QoS::AtLeastOnce)
            .await
            .unwrap();
        let (tx, replies) = mpsc::unbounded_channel();
        let (ready, is_ready) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready);
            while let Ok(ev) = eventloop.poll().await {
                match ev {
                    Event::Incoming(Packet::SubAck(_)) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Event::Incoming(Packet::Publish(p)) => {
                        let _ = tx.send(p.payload.to_vec());
                    }
                    _ => {}
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), is_ready)
            .await
            .expect("subscribed within 10 s")
            .unwrap();
        Agent {
            client,
            replies,
            task,
            base,
        }
    }

    async fn say(&self, kind: &str, body: &[u8]) {
        self.client
            .publish(
                format!("{}/{kind}", self.base),
                QoS::AtLeastOnce,
                false,
                body.to_vec(),
            )
            .await
            .unwrap();
    }

    async fn hello(&mut self, body: serde_json::Value) -> ConfigReply {
        self.say("hello", &serde_json::to_vec(&body).unwrap()).await;
        self.reply().await
    }

    async fn reply(&mut self) -> ConfigReply {
        let bytes = tokio::time::timeout(Duration::from_secs(20), self.replies.recv())
            .await
            .expect("an answer on the config topic within 20 s")
            .unwrap();
        ConfigReply::parse(&bytes).expect("a config reply")
    }

    /// Vanishes without a DISCONNECT (the broker then publishes its last will).
    fn vanish(self) {
        self.task.abort();
    }
}

fn open(env: &TestEnv, envelope: &SignedEnvelope) -> SegmentPolicy {
    let signer = load_signing_key(&env.config.distribution.signing_key_file)
        .unwrap()
        .unwrap();
    let mut keys = TrustedKeys::default();
    keys.trust_public(&signer.public_key()).unwrap();
    SegmentPolicy::from_payload(keys.verify(envelope, SEGMENT_POLICY_TYPE).unwrap()).unwrap()
}

fn versions(env: &TestEnv, reply: &ConfigReply, segment: &str) -> (u64, Vec<u64>) {
    let s = reply
        .segments
        .iter()
        .find(|s| s.segment_id.as_str() == segment)
        .unwrap_or_else(|| panic!("segment {segment} in {reply:?}"));
    (
        s.latest,
        s.versions.iter().map(|e| open(env, e).version).collect(),
    )
}

#[test]
fn a_hello_is_answered_with_the_agents_segments_and_the_agent_is_recorded() {
    block_on(async {
        let env = TestEnv::new("agents_hello").await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        for (group, segment) in [("HR", "hr"), ("laptops", "laptops"), ("Finance", "finance")] {
            let rule = json!({"tenant_id": "acme", "group": group, "segment_id": segment});
            assert_eq!(post_json(&api, "/v1/segment-rules", &rule).await.0, 201);
        }
        for (segment, n) in [
            ("hr", 1),
            ("hr", 2),
            ("hr", 3),
            ("laptops", 1),
            ("finance", 1),
        ] {
            let body =
                json!({"modules": {"p.rego": format!("package segments.{segment}\nv := {n}")}});
            let (status, text) = post_json(
                &api,
                &format!("/v1/segments/acme/{segment}/versions"),
                &body,
            )
            .await;
            assert_eq!(status, 201, "{text}");
        }

        // Bootstrap: the latest of each of its segments, and only its segments.
        let mut agent = Agent::connect(&env, "acme", "laptop-7").await;
        let reply = agent
            .hello(json!({"protocol": 1, "groups": ["HR", "laptops"]}))
            .await;
        assert_eq!(reply.error, None);
        assert_eq!(reply.segments.len(), 2, "{reply:?}");
        assert_eq!(versions(&env, &reply, "hr"), (3, vec![3]));
        assert_eq!(versions(&env, &reply, "laptops"), (1, vec![1]));
        assert_eq!(
            env.count("SELECT count(*) FROM agents WHERE agent_id = 'laptop-7' AND online AND groups = '{HR,laptops}'")
                .await,
            1
        );

        // Catching up: every version after the one applied, in order.
        let reply = agent
            .hello(json!({"protocol": 1, "groups": ["HR", "laptops"], "applied": {"hr": 1, "laptops": 1}}))
            .await;
        assert_eq!(versions(&env, &reply, "hr"), (3, vec![2, 3]));
        assert_eq!(versions(&env, &reply, "laptops"), (1, vec![]));

        // What it applies is recorded; drift shows in the API.
        agent
            .say(
                "status",
                br#"{"protocol": 1, "online": true, "applied": {"hr": 2, "laptops": 1}}"#,
            )
            .await;
        env.wait_at_least(
            "SELECT count(*) FROM agent_segments WHERE agent_id = 'laptop-7' AND segment_id = 'hr' AND applied_version = 2",
            1,
            Duration::from_secs(10),
        )
        .await;
        let (status, body) = request(
            &api,
            "GET",
            "/v1/agents?tenant_id=acme&behind=true",
            &[],
            b"",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let agents: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(agents["result"][0]["agent_id"], "laptop-7");
        assert_eq!(agents["result"][0]["behind"], 1, "{agents}");

        // Moved out of HR: its hello answers laptops only, and hr is no longer its drift.
        let reply = agent
            .hello(json!({"protocol": 1, "groups": ["laptops"], "applied": {"laptops": 1}}))
            .await;
        assert_eq!(reply.segments.len(), 1, "{reply:?}");
        assert_eq!(
            env.count("SELECT count(*) FROM agent_segments WHERE agent_id = 'laptop-7'")
                .await,
            1,
            "only laptops is recorded"
        );
        let (_, body) = request(
            &api,
            "GET",
            "/v1/agents?tenant_id=acme&behind=true",
            &[],
            b"",
        )
        .await;
        let agents: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(agents["result"], json!([]), "behind on nothing: {agents}");

        // Vanishing without goodbye: the broker's last will marks it offline.
        agent.vanish();
        let offline = env
            .wait_at_least(
                "SELECT count(*) FROM agents WHERE agent_id = 'laptop-7' AND NOT online",
                1,
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(offline, 1, "offline by last will");
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn unreadable_or_foreign_hellos_are_answered_with_why_and_change_nothing() {
    block_on(async {
        let env = TestEnv::new("agents_refuse").await;
        let engine = env.start().await;
        let mut agent = Agent::connect(&env, "acme", "kiosk-1").await;
        for (body, says) in [
            (&b"not json"[..], "hello refused"),
            (br#"{"protocol": 9, "groups": []}"#, "protocol 9"),
            (br#"{"protocol": 1, "groups": ["a\u0000"]}"#, "group names"),
        ] {
            agent.say("hello", body).await;
            let reply = agent.reply().await;
            let why = reply.error.unwrap_or_default();
            assert!(why.contains(says), "{says:?} in {why:?}");
            assert!(reply.segments.is_empty());
        }
        let mut stranger = Agent::connect(&env, "umbrella", "x1").await;
        let reply = stranger
            .hello(json!({"protocol": 1, "groups": ["HR"]}))
            .await;
        assert!(reply.error.unwrap_or_default().contains("not registered"));
        // A hello with no segments for its groups is answered, with none.
        let reply = agent
            .hello(json!({"protocol": 1, "groups": ["nobody"]}))
            .await;
        assert_eq!((reply.error, reply.segments.len()), (None, 0));
        assert_eq!(
            env.count("SELECT count(*) FROM agents").await,
            1,
            "only the readable hello's agent"
        );
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn an_agent_far_behind_gets_the_next_fifty_versions_in_order_and_asks_again() {
    block_on(async {
        let env = TestEnv::new("agents_cap").await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let rule = json!({"tenant_id": "acme", "group": "HR", "segment_id": "hr"});
        assert_eq!(post_json(&api, "/v1/segment-rules", &rule).await.0, 201);
        for n in 1..=55 {
            let body = json!({"modules": {"p.rego": format!("package segments.hr\nv := {n}")}});
            let (status, text) = post_json(&api, "/v1/segments/acme/hr/versions", &body).await;
            assert_eq!(status, 201, "{text}");
        }
        let mut agent = Agent::connect(&env, "acme", "laptop-3").await;
        let reply = agent
            .hello(json!({"protocol": 1, "groups": ["HR"], "applied": {"hr": 1}}))
            .await;
        assert_eq!(
            versions(&env, &reply, "hr"),
            (55, (2..=51).collect::<Vec<u64>>()),
            "at most {MAX_CATCH_UP} in one answer, oldest first"
        );
        // It applies those, sees it is still behind the latest, and asks again.
        let reply = agent
            .hello(json!({"protocol": 1, "groups": ["HR"], "applied": {"hr": 51}}))
            .await;
        assert_eq!(versions(&env, &reply, "hr"), (55, vec![52, 53, 54, 55]));
        agent.vanish();
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
