//! The demo's whole path at a small size: services, migration, tenants, engine, traffic, summary.

use std::time::Duration;

use crate::common;
use crate::common::TestEnv;
use portcullis::runtime::block_on;
use portcullis::tools::demo::{run_demo, DemoOptions};

#[test]
fn demo_drives_realistic_traffic_through_the_engine_into_postgres() {
    block_on(async {
        let env = TestEnv::new("demo").await;
        let opts = DemoOptions {
            cloudtrail_records: 400,
            device_events: 60,
            start_services: false,
            timeout: Duration::from_secs(120),
            seed: 9,
            keep_running: false,
            stop: tokio_util::sync::CancellationToken::new(),
            edge_agents: 8,
        };
        let s = run_demo(env.config.clone(), opts, |_| {})
            .await
            .expect("demo runs");
        // 400 + 60 good records, and the generator's 6 malformed or unroutable ones:
        // 3 on Kafka (bad JSON, unknown account, one bad record in a log file) and 3 on MQTT.
        assert_eq!(s.records, 400 + 60 + 2 + 3 + 3);
        assert_eq!(s.dead_letters, 6);
        assert_eq!(s.events_written, 400 + 60 + 2);
        assert_eq!(s.allow + s.deny, s.events_written);
        assert!(
            s.deny > 0 && s.allow > s.deny,
            "mostly benign traffic: {} allow, {} deny",
            s.allow,
            s.deny
        );
        assert!(!s.top_deny_reasons.is_empty());
        // The packs acme and globex enable judged the CloudTrail records: the summary counts
        // what Postgres holds.
        let (changes, attempts) = s.findings;
        assert!(changes > 0, "the suspicious records fire controls");
        assert_eq!(
            env.count("SELECT count(*) FROM compliance_findings").await,
            changes + attempts
        );
        let active: i64 = s.active_violations.iter().map(|(_, n)| n).sum();
        assert!(active > 0);
        assert_eq!(
            env.count("SELECT count(*) FROM compliance_violations")
                .await,
            active,
            "nobody worked them yet"
        );
        // The edge: 8 agents, 3 offline while 4 versions were published; all converged.
        let edge = s.edge.expect("the simulated agents ran");
        assert_eq!((edge.agents, edge.went_offline), (8, 3));
        assert_eq!(edge.published_while_away, 4);
        assert_eq!(
            edge.latest,
            [("eng", 2), ("hr", 3), ("laptops", 2)]
                .map(|(s, v)| (s.to_owned(), v))
                .into()
        );
        // What each agent reports, recorded by the engine: the latest of each of its segments.
        assert_eq!(
            env.count(
                "SELECT count(*) FROM agent_segments a JOIN segments s USING (tenant_id, segment_id)
                 WHERE a.agent_id LIKE 'demo-agent-%' AND a.applied_version = s.latest_version"
            )
            .await,
            // groups per agent i (i % 4): HR+laptops, Engineering+laptops, Engineering, HR
            2 + 2 + 1 + 1 + 2 + 2 + 1 + 1
        );
        assert_eq!(env.count("SELECT count(*) FROM events").await, 462);
        assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 6);
        assert_eq!(
            env.count("SELECT count(DISTINCT tenant_id) FROM events")
                .await,
            3
        );
        assert_eq!(
            env.count("SELECT count(*) FROM events WHERE source = 'mqtt'")
                .await,
            60
        );
        env.cleanup().await;
    });
}

#[test]
fn after_the_summary_the_demo_keeps_a_gentle_stream_going_for_the_console() {
    block_on(async {
        let env = TestEnv::new("demo_linger").await;
        let stop = tokio_util::sync::CancellationToken::new();
        let opts = DemoOptions {
            cloudtrail_records: 50,
            device_events: 10,
            start_services: false,
            timeout: Duration::from_secs(120),
            seed: 3,
            keep_running: true,
            stop: stop.clone(),
            edge_agents: 0,
        };
        let pool = env.pool.clone();
        let watcher = std::sync::Arc::new(std::sync::Mutex::new(None));
        let slot = watcher.clone();
        let s = run_demo(env.config.clone(), opts, move |s| {
            let addr = s.http_addr.expect("the API listens");
            let token = s.token.clone().expect("an admin token");
            let before = s.events_written as i64;
            // While the engine keeps running: the console is served, the token works, and new
            // events keep arriving; then stop it as Ctrl-C would.
            *slot.lock().unwrap() = Some(tokio::spawn(async move {
                let (status, page) = common::http_get(addr, "/console/").await;
                let api = common::Api {
                    addr,
                    token: Some(token),
                };
                let (me, _) = common::http_get(&api, "/v1/whoami").await;
                let mut grew = false;
                for _ in 0..100 {
                    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    if n >= before + 2 {
                        grew = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                stop.cancel();
                (status, page.contains("Portcullis"), me, grew)
            }));
        })
        .await
        .expect("demo runs and stops");
        let watch = watcher
            .lock()
            .unwrap()
            .take()
            .expect("the summary was reported");
        let (status, is_console, me, grew) = watch.await.unwrap();
        assert_eq!(status, 200);
        assert!(is_console);
        assert_eq!(me, 200, "the printed token signs in");
        assert!(grew, "no events arrived after the summary");
        assert!(s.events_written >= 60);
        env.cleanup().await;
    });
}
