//! Agent identity on the broker, on a real Mosquitto set up as docs/operations.md says (no
//! anonymous clients, the dynamic security plugin, `portcullis broker setup`): an enrolled
//! agent connects only with its own credentials and client id, publishes only on its own
//! topics, reads only its own answers and its tenant's segment policy, gets the segments of
//! the groups it was enrolled in whatever it claims, and is cut off when revoked.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::common;
use crate::common::agent::spawn_agent_with;
use crate::common::{post_json, TestEnv};
use portcullis::runtime::block_on;
use portcullis::sinks::postgres;
use portcullis_engine::TenantId;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// A raw MQTT client, to try what an agent (or an impostor) could do.
struct Client {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Result<Packet, String>>,
    /// Messages that came while waiting for something else.
    received: Vec<(String, Vec<u8>)>,
}

impl Client {
    /// Connects; `Err` with the broker's reason when it refuses.
    async fn connect(
        env: &TestEnv,
        client_id: &str,
        credentials: Option<(&str, &str)>,
    ) -> Result<Client, String> {
        let mut opts = MqttOptions::new(client_id, "127.0.0.1", env.config.mqtt.port);
        opts.set_max_packet_size(4 * 1024 * 1024, 64 * 1024);
        if let Some((user, password)) = credentials {
            opts.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        loop {
            match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("no CONNACK within 5 s".into()),
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(Ok(p)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
        });
        Ok(Client {
            client,
            rx,
            received: Vec::new(),
        })
    }

    async fn next(&mut self) -> Result<Packet, String> {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a packet within 10 s")
            .unwrap_or(Err("closed".into()))
    }

    /// Subscribes; whether the broker granted it.
    async fn subscribe(&mut self, filter: &str) -> bool {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        loop {
            match self.next().await.expect("connected") {
                Packet::SubAck(ack) => {
                    return matches!(ack.return_codes[..], [SubscribeReasonCode::Success(_)])
                }
                Packet::Publish(p) => self.received.push((p.topic, p.payload.to_vec())),
                _ => {}
            }
        }
    }

    /// Publishes with QoS 1 and waits for the broker's ack (which MQTT 3.1.1 sends also for
    /// a publish the broker drops for want of access).
    async fn publish(&mut self, topic: &str, payload: Value) {
        self.publish_as(topic, payload, false).await
    }

    async fn publish_as(&mut self, topic: &str, payload: Value, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_string())
            .await
            .unwrap();
        loop {
            match self.next().await.expect("connected") {
                Packet::PubAck(_) => return,
                Packet::Publish(p) => self.received.push((p.topic, p.payload.to_vec())),
                _ => {}
            }
        }
    }

    /// The next message (topic, payload), or `None` if none comes within `wait`.
    async fn message(&mut self, wait: Duration) -> Option<(String, Vec<u8>)> {
        if !self.received.is_empty() {
            return Some(self.received.remove(0));
        }
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, self.rx.recv()).await {
                Ok(Some(Ok(Packet::Publish(p)))) => return Some((p.topic, p.payload.to_vec())),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) | Err(_) => return None,
            }
        }
    }

    /// Waits until the broker closes the connection; false if it stays open for `wait`.
    async fn closed_within(&mut self, wait: Duration) -> bool {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, self.rx.recv()).await {
                Ok(Some(Err(_)) | None) => return true,
                Ok(Some(Ok(_))) => {}
                Err(_) => return false,
            }
        }
    }
}

async fn enroll(api: &common::Api, agent: &str, groups: &[&str]) -> (u16, Value) {
    post_json(
        api,
        &format!("/v1/agents/acme/{agent}/enrollment"),
        &json!({ "groups": groups }),
    )
    .await
}

fn credentials(answer: &Value) -> (String, String, String) {
    let r = &answer["result"];
    (
        r["username"].as_str().unwrap().to_owned(),
        r["password"].as_str().unwrap().to_owned(),
        r["client_id"].as_str().unwrap().to_owned(),
    )
}

/// `portcullis agent enroll` of acme's `agent` in group HR, credentials to `file`.
fn cli_enroll(env: &TestEnv, agent: &str, file: &std::path::Path) -> (i32, String) {
    let (code, _, err) = env.cli(&[
        "agent",
        "enroll",
        "--tenant",
        "acme",
        "--id",
        agent,
        "--groups",
        "HR",
        "--out",
        file.to_str().unwrap(),
    ]);
    (code, err)
}

fn segment_policy(segment: &str) -> Value {
    json!({"modules": {"p.rego": format!("package segments.{segment}\ndefault allow := false\n")}})
}

#[test]
fn enrolled_agents_are_confined_to_their_own_topics_and_their_tenants_policy() {
    block_on(async {
        let (env, _broker, _running) = TestEnv::on_secured_broker("enroll_acl").await;
        postgres::add_tenant(&env.pool, &TenantId::parse("globex").unwrap(), None, &[])
            .await
            .unwrap();
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let p = env.config.mqtt.topic_prefix.clone();
        for (tenant, segment) in [("acme", "hr"), ("globex", "fin")] {
            let (status, body) = post_json(
                &api,
                &format!("/v1/segments/{tenant}/{segment}/versions"),
                &segment_policy(segment),
            )
            .await;
            assert_eq!(status, 201, "{body}");
        }

        // One agent through the API, one through the CLI (credentials in a private file).
        let (status, answer) = enroll(&api, "laptop-1", &["HR"]).await;
        assert_eq!(status, 201, "{answer}");
        let (user1, password1, client1) = credentials(&answer);
        assert_eq!(user1, "acme/laptop-1");
        assert_eq!(client1, "portcullis-agent-acme-laptop-1");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("laptop-2.toml");
        let (code, err) = cli_enroll(&env, "laptop-2", &file);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (code, out, _) = env.cli(&["agent", "enrollments", "--tenant", "acme"]);
        assert_eq!(code, 0);
        assert!(
            out.contains("acme/laptop-1") && out.contains("acme/laptop-2"),
            "{out}"
        );

        // Who may connect: not anonymous clients, not a wrong password, not the right
        // credentials under another client id (its persistent session is its own).
        assert!(Client::connect(&env, "anon", None).await.is_err());
        assert!(Client::connect(&env, &client1, Some((&user1, "not-it")))
            .await
            .is_err());
        assert!(
            Client::connect(
                &env,
                "portcullis-agent-acme-laptop-2",
                Some((&user1, &password1))
            )
            .await
            .is_err(),
            "laptop-1's credentials do not open laptop-2's session"
        );
        let mut laptop1 = Client::connect(&env, &client1, Some((&user1, &password1)))
            .await
            .expect("an enrolled agent connects");

        // What it may read: its tenant's segment policy and its own answers; nothing of
        // another tenant or another agent, and no wildcard over the prefix.
        assert!(
            laptop1
                .subscribe(&format!("{p}/acme/segments/hr/policy"))
                .await
        );
        let (topic, _) = laptop1
            .message(Duration::from_secs(10))
            .await
            .expect("the retained latest hr version");
        assert_eq!(topic, format!("{p}/acme/segments/hr/policy"));
        assert!(
            laptop1
                .subscribe(&format!("{p}/acme/agents/laptop-1/config"))
                .await
        );
        assert!(
            !laptop1
                .subscribe(&format!("{p}/globex/segments/fin/policy"))
                .await
        );
        assert!(!laptop1.subscribe(&format!("{p}/+/segments/+/policy")).await);
        assert!(!laptop1.subscribe(&format!("{p}/#")).await);
        assert!(
            !laptop1
                .subscribe(&format!("{p}/acme/agents/laptop-2/config"))
                .await
        );

        // What it may publish: events under its own id only. The engine's account watches.
        let mut watcher = Client::connect(
            &env,
            "watcher",
            Some((
                common::ENGINE_BROKER_USER,
                env.config.mqtt.password.as_deref().unwrap(),
            )),
        )
        .await
        .unwrap();
        // Everything under the prefix: whatever got through would show here (after the
        // retained policies it is given first).
        assert!(watcher.subscribe(&format!("{p}/#")).await);
        while watcher.message(Duration::from_millis(500)).await.is_some() {}
        let event = json!({"agent": "x", "kind": "test"});
        laptop1
            .publish(&format!("{p}/acme/agents/laptop-2/events"), event.clone())
            .await;
        laptop1
            .publish(&format!("{p}/globex/agents/laptop-1/events"), event.clone())
            .await;
        laptop1
            .publish_as(&format!("{p}/acme/segments/hr/policy"), event.clone(), true)
            .await;
        laptop1
            .publish(&format!("{p}/acme/agents/laptop-1/events"), event.clone())
            .await;
        let (topic, _) = watcher
            .message(Duration::from_secs(10))
            .await
            .expect("its own event arrives");
        assert_eq!(
            topic,
            format!("{p}/acme/agents/laptop-1/events"),
            "only its own event got through"
        );
        assert!(watcher.message(Duration::from_millis(500)).await.is_none());
        // The retained policy is still the engine's, not what it tried to retain over it.
        let mut reader = Client::connect(&env, &client1, Some((&user1, &password1)))
            .await
            .unwrap();
        assert!(
            reader
                .subscribe(&format!("{p}/acme/segments/hr/policy"))
                .await
        );
        let (_, payload) = reader.message(Duration::from_secs(10)).await.unwrap();
        assert!(
            String::from_utf8_lossy(&payload).contains("signatures"),
            "the engine's signed envelope is retained"
        );

        // The API: scopes, unknown tenants and hostile ids.
        let reader_api = api.with_token(Some(&env.token(&["read:acme"]).await));
        assert_eq!(enroll(&reader_api, "laptop-3", &["HR"]).await.0, 403);
        let (status, _) = post_json(
            &api,
            "/v1/agents/initech/laptop-1/enrollment",
            &json!({"groups": ["HR"]}),
        )
        .await;
        assert_eq!(status, 404, "an unknown tenant");
        assert_eq!(enroll(&api, "..%2F..%2Fx", &["HR"]).await.0, 400);
        assert_eq!(enroll(&api, "laptop-3", &[]).await.0, 400);
        let revoke = "/v1/agents/acme/laptop-2/enrollment";
        assert_eq!(
            common::request(&reader_api, "DELETE", revoke, &[], b"")
                .await
                .0,
            403
        );
        assert_eq!(
            common::request(&api, "DELETE", revoke, &[], b"").await.0,
            200
        );
        assert_eq!(
            common::request(&api, "DELETE", revoke, &[], b"").await.0,
            404
        );

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn an_enrolled_agents_groups_decide_its_segments_and_revoking_cuts_it_off() {
    block_on(async {
        let (env, _broker, _running) = TestEnv::on_secured_broker("enroll_revoke").await;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        for (group, segment) in [("HR", "hr"), ("Finance", "fin")] {
            let rule = json!({"tenant_id": "acme", "group": group, "segment_id": segment});
            assert_eq!(post_json(&api, "/v1/segment-rules", &rule).await.0, 201);
            let (status, body) = post_json(
                &api,
                &format!("/v1/segments/acme/{segment}/versions"),
                &segment_policy(segment),
            )
            .await;
            assert_eq!(status, 201, "{body}");
        }
        let (status, answer) = enroll(&api, "laptop-9", &["HR"]).await;
        assert_eq!(status, 201, "{answer}");
        let (user, password, client_id) = credentials(&answer);

        // The real agent with its credentials file: it claims HR and laptops, gets hr.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("laptop-9.toml");
        let (code, err) = cli_enroll(&env, "laptop-9", &file);
        assert_eq!(code, 0, "re-enrolling makes new credentials: {err}");
        let agent = spawn_agent_with(
            &env,
            "laptop-9",
            &dir.path().join("state"),
            &["--credentials", file.to_str().unwrap()],
        );
        agent.wait_applied("hr", 1).await;
        // The first password stopped working when it was enrolled again.
        assert!(Client::connect(&env, &client_id, Some((&user, &password)))
            .await
            .is_err());
        drop(agent);

        // With the new credentials, a hello claiming Finance is answered with hr only (the
        // engine's answer follows the enrolled groups; the broker lets an agent read its whole
        // tenant's segment policy, docs/operations.md).
        let text = std::fs::read_to_string(&file).unwrap();
        let creds: toml::Value = toml::from_str(&text).unwrap();
        let password = creds["password"].as_str().unwrap().to_owned();
        let p = env.config.mqtt.topic_prefix.clone();
        let mut client = Client::connect(&env, &client_id, Some((&user, &password)))
            .await
            .expect("the new credentials work");
        assert!(
            client
                .subscribe(&format!("{p}/acme/agents/laptop-9/config"))
                .await
        );
        client
            .publish(
                &format!("{p}/acme/agents/laptop-9/hello"),
                json!({"protocol": 1, "groups": ["Finance"]}),
            )
            .await;
        let (_, reply) = client
            .message(Duration::from_secs(10))
            .await
            .expect("a config reply");
        let reply: Value = serde_json::from_slice(&reply).unwrap();
        let segments: Vec<&str> = reply["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["segment_id"].as_str().unwrap())
            .collect();
        assert_eq!(segments, ["hr"], "the enrolled groups decide: {reply}");
        let (status, listed) =
            common::request(&api, "GET", "/v1/agents?tenant_id=acme", &[], b"").await;
        assert_eq!(status, 200, "{listed}");
        let listed: Value = serde_json::from_str(&listed).unwrap();
        let row = &listed["result"][0];
        assert_eq!(row["agent_id"], "laptop-9");
        assert_eq!(row["enrolled"], true);
        assert_eq!(row["groups"], json!(["HR"]));

        // Revoked: disconnected at once, and the credentials no longer open a connection.
        let (code, _, err) = env.cli(&["agent", "revoke", "--tenant", "acme", "--id", "laptop-9"]);
        assert_eq!(code, 0, "{err}");
        assert!(client.closed_within(Duration::from_secs(10)).await);
        assert!(Client::connect(&env, &client_id, Some((&user, &password)))
            .await
            .is_err());
        let (code, _, err) = env.cli(&["agent", "revoke", "--tenant", "acme", "--id", "laptop-9"]);
        assert_ne!(code, 0);
        assert!(err.contains("not enrolled"), "{err}");
        assert_eq!(env.count("SELECT count(*) FROM agent_enrollments").await, 0);

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
