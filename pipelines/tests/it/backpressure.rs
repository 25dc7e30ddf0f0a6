//! Backpressure and bounded memory: a producer that outruns a stalled sink does not grow the
//! engine's memory with the backlog; the backlog waits in Kafka and is all stored once the sink
//! moves again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{cloudtrail, TestEnv};
use portcullis::runtime::block_on;

const MIB: u64 = 1024 * 1024;
/// Log files of this many records, each record padded to about 4 KiB: 1 MiB per message.
const RECORDS_PER_FILE: usize = 250;
const FILES: usize = 400;
/// What the engine may hold, whatever the backlog: its own baseline, librdkafka's read-ahead
/// (set to 8 MiB here, plus one fetch), one 2 MiB batch decoded, and allocator slack.
const RSS_BOUND: u64 = 224 * MIB;

/// Resident set of a process, from /proc.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Random text: the producer compresses, and Kafka's fetch limits count compressed bytes, so
/// repetitive padding would let one fetch carry a hundred times its limit once inflated.
fn noise(len: usize) -> String {
    let mut s = String::with_capacity(len + 32);
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s
}

fn log_file(n: usize) -> Vec<u8> {
    let records: Vec<_> = (0..RECORDS_PER_FILE)
        .map(|r| {
            let padding = noise(4000);
            let mut rec = cloudtrail(&format!("bp-{n}-{r}"), "PutObject", None);
            rec["requestParameters"] = serde_json::json!({ "bucketName": "logs", "tag": padding });
            rec
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap()
}

#[test]
fn memory_stays_bounded_while_a_stalled_sink_faces_a_larger_backlog() {
    block_on(async {
        let env = TestEnv::new("backpressure").await;
        let mut config = env.config.clone();
        config.mqtt.enabled = false;
        config.kafka.prefetch_max_bytes = 8 * MIB as usize;
        config.kafka.batch_max_bytes = 2 * MIB as usize;
        // No HTTP: a port picked here could be taken by a parallel test's engine before ours
        // binds it. A probe event stored proves that this engine consumes its topic.
        config.http.enabled = false;
        let k = &config.kafka;
        portcullis::sources::kafka::ensure_topic(k, &k.topic, k.topic_partitions)
            .await
            .unwrap();

        let engine = env.spawn_binary(&config);
        let pid = engine.0.id();
        let probe = serde_json::to_vec(&cloudtrail("bp-probe", "PutObject", None)).unwrap();
        env.produce(&[("probe", probe)]).await;
        assert_eq!(
            env.wait_at_least("SELECT count(*) FROM events", 1, Duration::from_secs(60))
                .await,
            1,
            "the engine consumes its topic"
        );

        // Sample the engine's resident memory for the rest of the test.
        let peak = Arc::new(AtomicU64::new(0));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                while let Some(rss) = rss_bytes(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };

        // Stall the sink: inserts into `events` wait on this lock; reads still work.
        let mut lock = env.pool.begin().await.unwrap();
        sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
            .execute(&mut *lock)
            .await
            .unwrap();

        let files: Vec<(String, Vec<u8>)> = (0..FILES)
            .map(|n| (format!("file-{n}"), log_file(n)))
            .collect();
        let backlog: u64 = files.iter().map(|(_, p)| p.len() as u64).sum();
        env.produce_many(files).await;
        tokio::time::sleep(Duration::from_secs(3)).await; // time to read ahead, if it would
        assert_eq!(
            env.count("SELECT count(*) FROM events").await,
            1,
            "the sink is stalled: only the probe is stored"
        );
        let stalled_peak = peak.load(Ordering::Relaxed);

        lock.rollback().await.unwrap();
        let want = (FILES * RECORDS_PER_FILE) as i64 + 1; // and the probe

        // A minute alone; allowed eight, as the suite's other tests share the two cores (this
        // test is about memory and completeness, not speed).
        let stored = env
            .expect_count(
                "SELECT count(*) FROM events",
                want,
                Duration::from_secs(480),
            )
            .await;
        assert_eq!(
            stored, want,
            "the whole backlog is stored once the sink moves"
        );
        let overall_peak = peak.load(Ordering::Relaxed);
        drop(engine);
        sampler.abort();

        eprintln!(
            "backlog {} MiB; engine RSS peak {} MiB while stalled, {} MiB overall",
            backlog / MIB,
            stalled_peak / MIB,
            overall_peak / MIB
        );
        assert!(
            backlog > RSS_BOUND,
            "the backlog must dwarf the bound to prove anything"
        );
        assert!(
            overall_peak < RSS_BOUND,
            "RSS peaked at {} MiB with a {} MiB backlog (bound {} MiB)",
            overall_peak / MIB,
            backlog / MIB,
            RSS_BOUND / MIB
        );
        env.cleanup().await;
    });
}
