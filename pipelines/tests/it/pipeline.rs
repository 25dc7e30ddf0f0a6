//! The walking skeleton end to end on real services: Kafka (tansu) and MQTT (Mosquitto) in,
//! tenant actors and Rego in the middle, Postgres out.

use std::time::Duration;

use crate::common::{cloudtrail, TestEnv, ACME_ACCOUNT};
use portcullis::runtime::block_on;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn kafka_records_become_events_decisions_and_dead_letters() {
    block_on(async {
        let env = TestEnv::new("kafka").await;
        let engine = env.start().await;

        let single = cloudtrail("ct-single-1", "ConsoleLogin", Some("No"));
        let file = json!({"Records": [
            cloudtrail("ct-file-1", "GetObject", None),
            cloudtrail("ct-file-2", "ConsoleLogin", Some("Yes")),
            {"eventName": "GetObject", "recipientAccountId": ACME_ACCOUNT}, // no eventTime/eventSource
        ]});
        env.produce(&[
            (ACME_ACCOUNT, serde_json::to_vec(&single).unwrap()),
            (ACME_ACCOUNT, serde_json::to_vec(&file).unwrap()),
            ("junk", b"{this is not json".to_vec()),
        ])
        .await;

        let events = env
            .expect_count("SELECT count(*) FROM events", 3, WAIT)
            .await;
        let dead = env
            .expect_count("SELECT count(*) FROM dead_letters", 2, WAIT)
            .await;
        assert_eq!((events, dead), (3, 2));
        assert_eq!(env.count("SELECT count(*) FROM decisions").await, 3);

        let (outcome, reasons, revision, source): (String, serde_json::Value, String, String) = sqlx::query_as(
            "SELECT outcome, reasons, bundle_revision, source FROM decision_log WHERE event_id = 'ct-single-1'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(outcome, "deny");
        assert_eq!(reasons, json!(["console login without MFA (CIS 4.2)"]));
        assert_eq!(revision, "acme-2026.12.2");
        assert_eq!(source, "kafka");
        let allowed: Vec<(String,)> = sqlx::query_as(
            "SELECT event_id FROM decision_log WHERE outcome = 'allow' ORDER BY event_id",
        )
        .fetch_all(&env.pool)
        .await
        .unwrap();
        assert_eq!(
            allowed,
            vec![("ct-file-1".to_owned(),), ("ct-file-2".to_owned(),)]
        );

        // The bad record inside the log file is dead-lettered alone, with its index and a reason.
        let (index, reason, tenant): (Option<i32>, String, Option<String>) = sqlx::query_as(
            "SELECT record_index, reason, tenant_hint FROM dead_letters WHERE record_index IS NOT NULL",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(index, Some(2));
        assert_eq!(reason, "missing required field \"eventTime\"");
        assert_eq!(tenant.as_deref(), Some("acme"));
        // The garbage message keeps its bytes and exact Kafka coordinates.
        let (payload, reason, partition, offset): (Vec<u8>, String, Option<i32>, Option<i64>) = sqlx::query_as(
            "SELECT payload, reason, kafka_partition, kafka_offset FROM dead_letters WHERE record_index IS NULL",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(payload, b"{this is not json");
        assert!(
            reason.starts_with("payload is not valid UTF-8 JSON"),
            "{reason}"
        );
        assert!(partition.is_some() && offset.is_some());

        engine.stop().await.expect("clean stop");
        env.cleanup().await;
    });
}

#[test]
fn mqtt_events_become_events_decisions_and_dead_letters() {
    block_on(async {
        let env = TestEnv::new("mqtt").await;
        let engine = env.start().await;
        let topic = env.device_topic("acme", "laptop-1");
        env.publish(&[
            (topic.clone(), serde_json::to_vec(&json!({
                "id": "m1", "time": "2026-11-22T10:00:00Z", "user": "alice", "action": "read", "resource": {"type": "hr_files", "region": "EU"}
            })).unwrap()),
            (topic.clone(), serde_json::to_vec(&json!({
                "id": "m2", "time": "2026-11-22T10:00:01Z", "user": "mallory", "action": "delete", "resource": {"type": "hr_files", "region": "US"}
            })).unwrap()),
            (topic.clone(), b"not json at all".to_vec()),
            (env.device_topic("umbrella", "x"), br#"{"action":"read"}"#.to_vec()),
        ])
        .await;

        assert_eq!(
            env.expect_count("SELECT count(*) FROM decisions", 2, WAIT)
                .await,
            2
        );
        assert_eq!(
            env.expect_count("SELECT count(*) FROM dead_letters", 2, WAIT)
                .await,
            2
        );
        let rows: Vec<(String, String, String, serde_json::Value)> = sqlx::query_as(
            "SELECT event_id, source, outcome, reasons FROM decision_log ORDER BY event_id",
        )
        .fetch_all(&env.pool)
        .await
        .unwrap();
        assert_eq!(
            rows[0],
            (
                "laptop-1/m1".into(),
                "mqtt".into(),
                "allow".into(),
                json!([])
            )
        );
        assert_eq!(rows[1].2, "deny");
        assert_eq!(
            rows[1].3,
            json!([
                "data residency: US is not an allowed region",
                "mallory may not delete hr_files"
            ])
        );
        let reasons: Vec<(String, String)> =
            sqlx::query_as("SELECT topic, reason FROM dead_letters ORDER BY reason")
                .fetch_all(&env.pool)
                .await
                .unwrap();
        assert!(
            reasons[0].1.starts_with("payload is not valid UTF-8 JSON"),
            "{reasons:?}"
        );
        assert_eq!(reasons[1].0, env.device_topic("umbrella", "x"));
        assert!(
            reasons[1]
                .1
                .contains("tenant \"umbrella\" is not registered"),
            "{reasons:?}"
        );

        engine.stop().await.expect("clean stop");
        env.cleanup().await;
    });
}

#[test]
fn restart_resumes_kafka_from_committed_offsets_and_mqtt_from_the_persistent_session() {
    block_on(async {
        let env = TestEnv::new("restart").await;
        let batch = |from: usize, to: usize| -> Vec<(&str, Vec<u8>)> {
            (from..to)
                .map(|i| {
                    (
                        ACME_ACCOUNT,
                        serde_json::to_vec(&cloudtrail(&format!("r-{i}"), "GetObject", None))
                            .unwrap(),
                    )
                })
                .collect()
        };
        let engine = env.start().await;
        env.produce(&batch(0, 20)).await;
        assert_eq!(
            env.expect_count("SELECT count(*) FROM events", 20, WAIT)
                .await,
            20
        );
        engine.stop().await.expect("clean stop");

        // While the engine is down: more CloudTrail on Kafka, and agent events over MQTT, which
        // the broker must queue for our persistent session.
        env.produce(&batch(20, 35)).await;
        let topic = env.device_topic("acme", "offline-agent");
        let device: Vec<(String, Vec<u8>)> = (0..5)
            .map(|i| {
                (
                    topic.clone(),
                    format!(r#"{{"id":"o{i}","time":"2026-11-22T10:00:0{i}Z","user":"alice","action":"read"}}"#).into_bytes(),
                )
            })
            .collect();
        env.publish(&device).await;

        let engine = env.start().await;
        assert_eq!(
            env.expect_count(
                "SELECT count(*) FROM events WHERE source = 'kafka'",
                35,
                WAIT
            )
            .await,
            35
        );
        assert_eq!(
            env.expect_count("SELECT count(*) FROM events WHERE source = 'mqtt'", 5, WAIT)
                .await,
            5
        );
        // The second run resumed where the first committed: it consumed only the 15 new Kafka
        // messages and the 5 queued MQTT ones, not the first 20 again.
        assert_eq!(engine.stats.messages_committed(), 20);
        // Nothing is judged twice: one decision per event.
        assert_eq!(env.count("SELECT count(*) FROM decisions").await, 40);
        assert_eq!(
            env.count("SELECT count(*) FROM (SELECT event_id FROM decisions GROUP BY event_id HAVING count(*) > 1) d").await,
            0
        );
        engine.stop().await.expect("clean stop");
        env.cleanup().await;
    });
}

#[test]
fn rows_postgres_refuses_are_set_aside_without_stalling_the_partition() {
    block_on(async {
        let env = TestEnv::new("refused").await;
        // A constraint the shipped schema does not have stands in for any content Postgres
        // refuses (a value too large to index, an encoding it rejects, ...).
        sqlx::query(
            "ALTER TABLE events ADD CONSTRAINT no_mallory CHECK (principal NOT LIKE '%mallory%')",
        )
        .execute(&env.pool)
        .await
        .unwrap();
        let engine = env.start().await;
        let mut bad = cloudtrail("refused-1", "GetObject", None);
        bad["userIdentity"]["arn"] = json!(format!("arn:aws:iam::{ACME_ACCOUNT}:user/mallory"));
        let msgs: Vec<(&str, Vec<u8>)> = vec![
            (
                ACME_ACCOUNT,
                serde_json::to_vec(&cloudtrail("ok-1", "GetObject", None)).unwrap(),
            ),
            (ACME_ACCOUNT, serde_json::to_vec(&bad).unwrap()),
            (
                ACME_ACCOUNT,
                serde_json::to_vec(&cloudtrail("ok-2", "GetObject", None)).unwrap(),
            ),
        ];
        env.produce(&msgs).await;
        assert_eq!(
            env.expect_count("SELECT count(*) FROM events", 2, WAIT)
                .await,
            2
        );
        assert_eq!(
            env.expect_count("SELECT count(*) FROM dead_letters", 1, WAIT)
                .await,
            1
        );
        let reason: String = sqlx::query_scalar("SELECT reason FROM dead_letters")
            .fetch_one(&env.pool)
            .await
            .unwrap();
        assert!(
            reason.contains("could not be stored in Postgres") && reason.contains("no_mallory"),
            "{reason}"
        );
        // The partition keeps moving: later messages still arrive.
        env.produce(&[(
            ACME_ACCOUNT,
            serde_json::to_vec(&cloudtrail("ok-3", "GetObject", None)).unwrap(),
        )])
        .await;
        assert_eq!(
            env.expect_count("SELECT count(*) FROM events", 3, WAIT)
                .await,
            3
        );
        engine.stop().await.expect("clean stop");
        // Replaying it while the cause persists reports it and goes on; it does not abort.
        let open = portcullis::sinks::postgres::DeadLetterFilter {
            limit: 10,
            ..Default::default()
        };
        let replayed = portcullis::cli::dlq::replay(&env.config, &open)
            .await
            .expect("replay runs");
        assert_eq!(replayed.len(), 1);
        assert!(
            matches!(&replayed[0].1, portcullis::path::Replayed::StillFailing(r) if r.contains("no_mallory")),
            "{replayed:?}"
        );
        assert_eq!(
            env.count("SELECT replay_attempts::int8 FROM dead_letters")
                .await,
            1
        );
        env.cleanup().await;
    });
}

#[test]
fn an_mqtt_burst_larger_than_the_in_flight_window_all_arrives() {
    block_on(async {
        let env = TestEnv::new("burst").await;
        let engine = env.start().await;
        // More than the broker's in-flight window (1000) and several batches deep: the engine
        // must keep acknowledging and pinging while the burst is queued.
        let n = 4000;
        let topic = env.device_topic("acme", "burst-agent");
        let msgs: Vec<(String, Vec<u8>)> = (0..n)
            .map(|i| {
                let body = json!({"id": format!("b{i}"), "time": "2026-11-22T10:00:00Z", "user": "alice", "action": "read"});
                (topic.clone(), serde_json::to_vec(&body).unwrap())
            })
            .collect();
        env.publish(&msgs).await;
        assert_eq!(
            env.expect_count("SELECT count(*) FROM events", n, WAIT)
                .await,
            n
        );
        engine.stop().await.expect("clean stop");
        env.cleanup().await;
    });
}

#[test]
fn qos0_messages_beyond_their_buffer_are_dropped_and_counted_while_the_sink_stalls() {
    block_on(async {
        let mut env = TestEnv::new("qos0").await;
        env.config.kafka.enabled = false;
        env.config.mqtt.qos0_buffer_bytes = 16 * 1024;
        let engine = env.start().await;

        // Stall the sink, so the first batch holds its budget until the lock goes.
        let mut lock = env.pool.begin().await.unwrap();
        sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
            .execute(&mut *lock)
            .await
            .unwrap();
        let topic = env.device_topic("acme", "chatty");
        let n = 400;
        let pad = "x".repeat(1024);
        let msgs: Vec<(String, Vec<u8>)> = (0..n)
            .map(|i| {
                let body = json!({"id": format!("q{i}"), "time": "2026-11-22T10:00:00Z", "action": "read", "pad": pad});
                (topic.clone(), serde_json::to_vec(&body).unwrap())
            })
            .collect();
        let size = msgs[0].1.len() as u64;
        env.publish_qos0(&msgs).await;

        // At most the budget's worth is held (in the stalled batch or queued behind it); the
        // rest is dropped and counted rather than piling up in memory.
        let held = 16 * 1024 / size;
        let until = std::time::Instant::now() + WAIT;
        while engine.stats.metrics.mqtt_qos0_dropped.get() < n as u64 - held {
            assert!(
                std::time::Instant::now() < until,
                "only {} of {n} QoS 0 messages dropped with room for {held}",
                engine.stats.metrics.mqtt_qos0_dropped.get()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await; // any stragglers
        lock.rollback().await.unwrap();
        let dropped = engine.stats.metrics.mqtt_qos0_dropped.get();
        assert!(
            dropped < n as u64,
            "the budget admits messages while there is room"
        );
        let stored = env
            .expect_count("SELECT count(*) FROM events", n - dropped as i64, WAIT)
            .await;
        assert_eq!(
            stored,
            n - dropped as i64,
            "whatever was not dropped is stored"
        );

        // Once the sink moves again, the budget is free: QoS 0 flows.
        let more: Vec<(String, Vec<u8>)> = (0..5)
            .map(|i| {
                let body = json!({"id": format!("after{i}"), "time": "2026-11-22T10:00:00Z", "action": "read"});
                (topic.clone(), serde_json::to_vec(&body).unwrap())
            })
            .collect();
        env.publish_qos0(&more).await;
        assert_eq!(
            env.expect_count(
                "SELECT count(*) FROM events WHERE raw->>'id' LIKE 'after%'",
                5,
                WAIT
            )
            .await,
            5
        );
        engine.stop().await.expect("clean stop");
        env.cleanup().await;
    });
}

#[test]
fn two_engines_in_one_shared_subscription_split_agent_events_without_loss() {
    block_on(async {
        let mut env = TestEnv::new("shared").await;
        env.config.mqtt.shared_group = Some(format!("g{}", env.suffix));
        env.config.kafka.enabled = false;
        let mut second = env.config.clone();
        second.mqtt.client_id = format!("{}-b", env.config.mqtt.client_id);
        let a = env.start().await;
        let b = env.start_with(second.clone()).await;
        let topic = env.device_topic("acme", "fleet");
        let n = 300;
        let msgs: Vec<(String, Vec<u8>)> = (0..n)
            .map(|i| {
                let body = json!({"id": format!("s{i}"), "time": "2026-11-22T10:00:00Z", "user": "alice", "action": "read"});
                (topic.clone(), serde_json::to_vec(&body).unwrap())
            })
            .collect();
        env.publish(&msgs).await;
        assert_eq!(
            env.expect_count("SELECT count(*) FROM events", n, WAIT)
                .await,
            n
        );
        let (got_a, got_b) = (a.stats.messages_committed(), b.stats.messages_committed());
        assert_eq!(
            got_a + got_b,
            n as u64,
            "each event delivered to exactly one engine"
        );
        assert!(
            got_a > 0 && got_b > 0,
            "the broker splits the load: {got_a} / {got_b}"
        );
        a.stop().await.unwrap();
        b.stop().await.unwrap();
        env.discard_mqtt_session(&second.mqtt.client_id).await;
        env.cleanup().await;
    });
}
