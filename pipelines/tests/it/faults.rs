//! Fault tests on the real services, with the real `portcullis` binary where processes matter:
//! a crash mid-stream, a member of a consumer group stopping mid-stream, and a Postgres outage
//! mid-stream lose nothing and duplicate nothing.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common;
use crate::common::TestEnv;
use chrono::Utc;
use portcullis::config::Config;
use portcullis::runtime::block_on;
use portcullis::tools::demo::{Generator, Traffic, DEMO_TENANTS};
use portcullis_engine::TenantId;

/// `records` realistic CloudTrail records (single records and log files) for the demo tenants.
async fn cloudtrail_stream(env: &TestEnv, records: u64) -> Vec<(String, Vec<u8>)> {
    for t in DEMO_TENANTS {
        let accounts: Vec<String> = t.accounts.iter().map(|a| a.to_string()).collect();
        portcullis::sinks::postgres::add_tenant(
            &env.pool,
            &TenantId::parse(t.id).unwrap(),
            None,
            &accounts,
        )
        .await
        .unwrap();
    }
    Generator::new(11, Utc::now(), &env.config.mqtt.topic_prefix)
        .kafka_traffic(records)
        .into_iter()
        .map(|t| match t {
            Traffic::Kafka { key, payload, .. } => (key, payload),
            Traffic::Mqtt { .. } => unreachable!("kafka traffic only"),
        })
        .collect()
}

/// A config for one engine process of a test: its own HTTP port (for /metrics), MQTT off.
fn member(env: &TestEnv, name: &str) -> Config {
    let mut config = env.config.clone();
    config.http.listen = format!("127.0.0.1:{}", common::free_port());
    config.mqtt.enabled = false;
    config.kafka.instance_id = Some(format!("{}-{name}", env.suffix));
    config
}

/// A metric of an engine process, summed over its labels, once its HTTP port answers.
async fn metric(config: &Config, name: &str) -> Option<f64> {
    let addr: std::net::SocketAddr = config.http.listen.parse().unwrap();
    let (_, text) = common::try_http_get(addr, "/metrics").await?;
    Some(
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

/// Waits for exactly `n` events, each once, and a decision for each.
async fn every_event_once(env: &TestEnv, n: i64, context: &str) {
    let events = env
        .expect_count("SELECT count(*) FROM events", n, Duration::from_secs(240))
        .await;
    assert_eq!(events, n, "every event, once ({context})");
    assert_eq!(
        env.count("SELECT count(DISTINCT (tenant_id, event_id)) FROM events")
            .await,
        n
    );
    assert_eq!(
        env.expect_count("SELECT count(*) FROM decisions", n, Duration::from_secs(10))
            .await,
        n
    );
}

/// Asks the process to stop (SIGTERM) and waits for a clean exit.
fn stop(engine: &mut common::ChildGuard) {
    std::process::Command::new("kill")
        .args(["-TERM", &engine.0.id().to_string()])
        .status()
        .unwrap();
    assert!(
        engine.0.wait().unwrap().success(),
        "clean exit after SIGTERM"
    );
}

#[test]
fn kill_9_mid_stream_then_a_restart_in_the_same_group_resumes_with_every_event_once() {
    block_on(async {
        let env = TestEnv::new("kill9").await;
        let n: i64 = 100_000;
        let stream = cloudtrail_stream(&env, n as u64).await;
        let messages = stream.len() as f64;
        env.produce_many(stream).await;

        // Static membership: the restarted process comes back under the same name and takes
        // its partitions at once, instead of waiting out the dead member's session.
        let config = member(&env, "a");
        let mut engine = env.spawn_binary(&config);
        let seen = env
            .wait_at_least(
                "SELECT count(*) FROM events",
                n / 4,
                Duration::from_secs(120),
            )
            .await;
        assert!(
            seen >= n / 4 && seen < n,
            "kill must land mid-stream (saw {seen} of {n})"
        );
        // Let an offset commit (every second) pass, so that there is one to resume from.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        engine.0.kill().expect("SIGKILL"); // no drain, no offset commit, no goodbye
        engine.0.wait().unwrap();
        let at_kill = env.count("SELECT count(*) FROM events").await;
        assert!(at_kill < n, "the kill landed before the end ({at_kill})");

        let mut engine = env.spawn_binary(&config);
        every_event_once(&env, n, &format!("killed at {at_kill}")).await;
        // It resumed from the offsets committed before the kill, not from the start.
        let received = metric(&config, "portcullis_component_received_messages_total")
            .await
            .expect("the restarted engine serves /metrics");
        assert!(
            received > 0.0 && received < messages,
            "the restarted engine read {received} of {messages} messages"
        );
        stop(&mut engine);
        env.cleanup().await;
    });
}

#[test]
fn two_engines_in_one_group_split_the_partitions_and_one_stopping_mid_stream_loses_nothing() {
    block_on(async {
        let mut env = TestEnv::new("group").await;
        env.config.kafka.topic_partitions = 4;
        let n: i64 = 120_000;
        // Keyed per message rather than by account, so that every partition carries some.
        let stream: Vec<(String, Vec<u8>)> = cloudtrail_stream(&env, n as u64)
            .await
            .into_iter()
            .enumerate()
            .map(|(i, (_, payload))| (format!("m{i}"), payload))
            .collect();
        // Dynamic membership: a member that stops leaves the group at once, and its partitions
        // move. (A static member is expected back: the broker keeps its partitions for it until
        // its session times out.)
        let (mut a_config, mut b_config) = (member(&env, "a"), member(&env, "b"));
        a_config.kafka.instance_id = None;
        b_config.kafka.instance_id = None;
        let mut a = env.spawn_binary(&a_config);
        let mut b = env.spawn_binary(&b_config);

        // Both take part: the partitions are split between them.
        let until = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let owned = (
                metric(&a_config, "portcullis_kafka_assigned_partitions").await,
                metric(&b_config, "portcullis_kafka_assigned_partitions").await,
            );
            if let (Some(pa), Some(pb)) = owned {
                if pa > 0.0 && pb > 0.0 {
                    assert_eq!(pa + pb, 4.0, "every partition owned once");
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < until,
                "the group did not split its partitions: {owned:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Produced while both consume, so that a stops with its partitions still being fed.
        let kafka = env.config.kafka.clone();
        let producing = tokio::spawn(async move {
            let producer = portcullis::sources::kafka::producer(&kafka).unwrap();
            portcullis::sources::kafka::produce_all(&producer, &kafka.topic, &stream).await
        });
        env.wait_at_least(
            "SELECT count(*) FROM events",
            n / 8,
            Duration::from_secs(120),
        )
        .await;
        let a_committed = metric(&a_config, "portcullis_messages_committed_total")
            .await
            .unwrap();
        assert!(a_committed > 0.0, "a processed its share before stopping");
        stop(&mut a);
        let at_stop = env.count("SELECT count(*) FROM events").await;
        assert!(
            at_stop < n * 3 / 4,
            "a stopped with its partitions still holding events to hand over ({at_stop} of {n} stored)"
        );

        producing.await.unwrap().expect("produce");

        // b takes a's partitions over and finishes the stream.
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while metric(&b_config, "portcullis_kafka_assigned_partitions").await != Some(4.0) {
            assert!(
                std::time::Instant::now() < until,
                "b did not take a's partitions over"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        every_event_once(&env, n, "a stopped mid-stream").await;
        stop(&mut b);
        env.cleanup().await;
    });
}

#[test]
fn a_postgres_outage_mid_stream_loses_nothing_and_the_engine_recovers_by_itself() {
    block_on(async {
        let env = TestEnv::new("pgdown").await;
        let stream = cloudtrail_stream(&env, 6_000).await;
        let (first, second) = stream.split_at(stream.len() / 2);
        let engine = env.start().await;
        env.produce_many(first.to_vec()).await;
        let before = env
            .wait_at_least("SELECT count(*) FROM events", 1, Duration::from_secs(60))
            .await;
        assert!(before > 0);

        // Make this test's database unavailable: drop its connections and refuse new ones.
        let db = env.database();
        let admin = sqlx::PgPool::connect(&common::base_url()).await.unwrap();
        let outage = |allow: bool| {
            sqlx::AssertSqlSafe(format!(
                "ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS {allow}"
            ))
        };
        sqlx::query(outage(false)).execute(&admin).await.unwrap();
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&db)
            .execute(&admin)
            .await
            .unwrap();
        env.produce_many(second.to_vec()).await;
        let down_until = std::time::Instant::now() + Duration::from_secs(20);
        let mut noticed = false;
        while std::time::Instant::now() < down_until {
            noticed |= !engine.stats.postgres_ok.load(Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            noticed,
            "the engine must report Postgres as unavailable during the outage"
        );
        let (status, body) = common::http_get(engine.http_addr(), "/readyz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains(r#""postgres":"unavailable""#), "{body}");
        sqlx::query(outage(true)).execute(&admin).await.unwrap();

        // The test's own pool lost its connections too; it reconnects on demand.
        let total: i64 = 6_000;
        let events = env
            .expect_count(
                "SELECT count(*) FROM events",
                total,
                Duration::from_secs(90),
            )
            .await;
        assert_eq!(events, total);
        assert_eq!(env.count("SELECT count(*) FROM decisions").await, total);
        assert!(
            engine.stats.postgres_ok.load(Ordering::Relaxed),
            "recovered by itself"
        );
        let (status, body) = common::http_get(engine.http_addr(), "/readyz").await;
        assert_eq!(status, 200, "{body}");
        assert!(engine.stats.retries() > 0);
        engine.stop().await.expect("clean stop");
        env.cleanup().await;
    });
}
