//! /healthz, /readyz and /metrics on a running engine.

use std::time::Duration;

use crate::common::{cloudtrail, http_get, TestEnv, ACME_ACCOUNT};
use portcullis::runtime::block_on;

#[test]
fn health_readiness_and_metrics_answer_as_documented() {
    block_on(async {
        let env = TestEnv::new("http").await;
        let engine = env.start().await;
        let addr = engine.http_addr();

        let (status, body) = http_get(addr, "/healthz").await;
        assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));

        // Ready once every source has reached its broker: poll, as an orchestrator would.
        let mut reply = http_get(addr, "/readyz").await;
        for _ in 0..100 {
            if reply.0 == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            reply = http_get(addr, "/readyz").await;
        }
        let (status, body) = reply;
        let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(ready["ready"], true);
        assert_eq!(ready["checks"]["postgres"], "ok");
        assert_eq!(ready["checks"]["kafka"], "ok");
        assert_eq!(ready["checks"]["mqtt"], "ok");

        env.produce(&[
            (
                ACME_ACCOUNT,
                serde_json::to_vec(&cloudtrail("m-1", "GetObject", None)).unwrap(),
            ),
            (ACME_ACCOUNT, b"not json".to_vec()),
        ])
        .await;
        env.wait_at_least("SELECT count(*) FROM events", 1, Duration::from_secs(60))
            .await;
        env.wait_at_least(
            "SELECT count(*) FROM dead_letters",
            1,
            Duration::from_secs(60),
        )
        .await;
        // Metrics are recorded right after the commit the counts above observed; allow a moment.
        let mut text = String::new();
        for _ in 0..50 {
            text = http_get(addr, "/metrics").await.1;
            if text.contains("portcullis_dead_letters_total{source=\"kafka\"} 1")
                && caught_up(&text, &env.config.kafka.topic)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for expected in [
            r#"portcullis_events_total{source="kafka",tenant="acme"} 1"#,
            r#"portcullis_decisions_total{outcome="allow",tenant="acme"} 1"#,
            r#"portcullis_dead_letters_total{source="kafka"} 1"#,
            "portcullis_events_stored_total 1",
            r#"portcullis_component_received_messages_total{source="kafka"} 2"#,
            r#"portcullis_end_to_end_seconds_count{source="kafka"} 2"#,
            "portcullis_postgres_write_seconds_count",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(expected), "missing {expected} in:\n{text}");
        }
        // Both messages share a key, so one partition carried them; it is consumed to its end.
        assert!(
            caught_up(&text, &env.config.kafka.topic),
            "no partition with lag 0:\n{text}"
        );
        let (status, _) = http_get(addr, "/nope").await;
        assert_eq!(status, 404);
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

/// Some partition of `topic` reports a consumer lag of 0.
fn caught_up(metrics: &str, topic: &str) -> bool {
    metrics.lines().any(|l| {
        l.starts_with("portcullis_kafka_consumer_lag{")
            && l.contains(&format!("topic=\"{topic}\""))
            && l.ends_with("} 0")
    })
}
