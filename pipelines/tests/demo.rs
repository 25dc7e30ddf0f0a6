//! The demo's whole path at a small size: services, migration, tenants, engine, traffic, summary.

mod common;

use std::time::Duration;

use common::TestEnv;
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
        };
        let s = run_demo(env.config.clone(), opts).await.expect("demo runs");
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
