//! The Postgres sink against a real database: idempotence and partition routing.

use crate::common::TestEnv;
use chrono::{TimeZone, Utc};
use portcullis::path::{RowSet, RowSink, SinkError};
use portcullis::runtime::block_on;
use portcullis::sinks::postgres::{insert_api_decisions, ApiDecisionRow, PgSink};
use portcullis_engine::{DeadLetter, Decision, Event, EventKind, Origin, Source, TenantId};
use serde_json::json;

fn event(id: &str, year: i32) -> Event {
    Event {
        event_id: id.into(),
        tenant_id: TenantId::parse("acme").unwrap(),
        source: Source::Kafka,
        kind: EventKind::Cloudtrail,
        event_time: Utc.with_ymd_and_hms(year, 3, 1, 12, 0, 0).unwrap(),
        principal: "alice".into(),
        action: "GetObject".into(),
        service: "s3.amazonaws.com".into(),
        resource: None,
        source_ip: Some("192.0.2.1".into()),
        account: "111111111111".into(),
        raw: json!({"eventID": id, "nested": {"quote": "it's \"fine\""}}),
    }
}

fn decision(e: &Event) -> Decision {
    Decision {
        decision_id: portcullis_engine::ids::decision_id(
            "acme",
            &e.event_id,
            e.event_time,
            "data.tenants.acme.decision",
        ),
        event_id: e.event_id.clone(),
        event_time: e.event_time,
        tenant_id: e.tenant_id.clone(),
        rule_path: "data.tenants.acme.decision".into(),
        allowed: false,
        result: json!({"allow": false, "reasons": ["x"]}),
        bundle_revision: "r1".into(),
        policy_digest: "sha256:00".into(),
        eval_micros: 12,
        anomaly_score: None,
        anomaly_model_version: None,
        protection_level: None,
        findings: Vec::new(),
        resource_change: None,
    }
}

#[test]
fn writing_the_same_batch_twice_leaves_the_same_rows() {
    block_on(async {
        let env = TestEnv::new("writer").await;
        let sink = PgSink::new(env.pool.clone());
        let events = vec![event("w1", 2026), event("w2", 2019)];
        let set = RowSet {
            decisions: events.iter().map(decision).collect(),
            events,
            dead_letters: vec![DeadLetter::new(
                Origin::Kafka {
                    topic: "t".into(),
                    partition: 0,
                    offset: 7,
                },
                None,
                &[0xff, 0x00, 0x01],
                "bad bytes",
            )],
            ..RowSet::default()
        };
        // Two messages' rows in one transaction: the second set holds only an event.
        let later = RowSet {
            events: vec![event("w3", 2026)],
            decisions: vec![decision(&event("w3", 2026))],
            ..RowSet::default()
        };
        let batch = [set, later];
        let first = sink.write(&batch).await.unwrap();
        let counts: Vec<(&str, u64)> = first.iter().collect();
        assert_eq!(
            counts,
            [("dead_letters", 1), ("decisions", 3), ("events", 3)]
        );
        let second = sink.write(&batch).await.unwrap();
        assert!(
            second.iter().all(|(_, n)| n == 0),
            "a redelivered batch inserts nothing: {second:?}"
        );
        assert_eq!(env.count("SELECT count(*) FROM events").await, 3);
        assert_eq!(env.count("SELECT count(*) FROM decisions").await, 3);
        assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 1);

        // A batch that repeats an event of its own, beside one already stored and a new one:
        // each is stored once (the straight COPY meets the duplicate and the batch goes
        // through staging instead).
        let repeated = RowSet {
            events: vec![event("w5", 2026), event("w5", 2026), event("w1", 2026)],
            ..RowSet::default()
        };
        let counts = sink.write(std::slice::from_ref(&repeated)).await.unwrap();
        assert_eq!(counts.of("events"), 1, "only w5, once");
        assert_eq!(env.count("SELECT count(*) FROM events").await, 4);

        // Rows Postgres refuses for what they hold are told apart from an unavailable database:
        // a NUL in text is refused on every retry.
        let refused = RowSet {
            events: vec![Event {
                principal: "nul\u{0}".into(),
                ..event("w4", 2026)
            }],
            ..RowSet::default()
        };
        let err = sink
            .write(std::slice::from_ref(&refused))
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::Refused(_)), "{err:?}");
        assert_eq!(
            env.count("SELECT count(*) FROM events").await,
            4,
            "nothing of it"
        );

        // Raw JSON and binary payloads round-trip exactly.
        let raw: serde_json::Value =
            sqlx::query_scalar("SELECT raw FROM events WHERE event_id = 'w1'")
                .fetch_one(&env.pool)
                .await
                .unwrap();
        assert_eq!(raw, batch[0].events[0].raw);
        let payload: Vec<u8> = sqlx::query_scalar("SELECT payload FROM dead_letters")
            .fetch_one(&env.pool)
            .await
            .unwrap();
        assert_eq!(payload, vec![0xff, 0x00, 0x01]);

        // An event from years ago lands in the default partition, and a current one in its month.
        let part: String =
            sqlx::query_scalar("SELECT tableoid::regclass::text FROM events WHERE event_id = 'w2'")
                .fetch_one(&env.pool)
                .await
                .unwrap();
        assert_eq!(part, "events_default");
        env.cleanup().await;
    });
}

#[test]
fn the_api_decision_log_stores_each_decision_once_as_given() {
    block_on(async {
        let env = TestEnv::new("apilog").await;
        let row = |n: u128, input, erased: &[&str], result| ApiDecisionRow {
            decision_id: uuid::Uuid::from_u128(n),
            tenant_id: "acme".into(),
            path: "data.tenants.acme.allow".into(),
            input,
            erased: erased.iter().map(|e| e.to_string()).collect(),
            result,
            bundle_revision: "r\"1\"".into(),
            policy_digest: "sha256:00".into(),
            eval_micros: u64::MAX,
            decided_at: Utc::now(),
            error: None,
            size_hint: 64,
            protection_level: None,
            approval: None,
        };
        // A failed query: no result, and why.
        let failed = ApiDecisionRow {
            error: Some("evaluation stopped: time limit".into()),
            ..row(4, Some(json!({"n": 1})), &[], None)
        };
        let rows = vec![
            row(1, None, &[], Some(json!(true))),
            row(
                2,
                Some(json!(null)),
                &[
                    "/input/a,b",
                    r#"/input/say "hi" \ {NULL}"#,
                    "NULL",
                    "",
                    " {x} ",
                ],
                None,
            ),
            row(
                3,
                Some(json!({"q": "it's \"quoted\", with, commas\nand a line"})),
                &[],
                Some(json!({"allow": false})),
            ),
            failed,
        ];
        assert_eq!(
            insert_api_decisions(&env.pool, &rows, true).await.unwrap(),
            4
        );
        assert_eq!(
            insert_api_decisions(&env.pool, &rows, true).await.unwrap(),
            0,
            "a decision written again (a retried batch) is stored once"
        );
        // Each decision has one receipt (the failure none), at leaf indexes 0, 1, 2, even
        // though the batch was written twice.
        let receipts: Vec<(i64, uuid::Uuid, String)> = sqlx::query_as(
            "SELECT leaf_index, decision_id, outcome FROM receipts ORDER BY leaf_index",
        )
        .fetch_all(&env.pool)
        .await
        .unwrap();
        let ids: Vec<_> = receipts.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(
            ids,
            (1..=3u128)
                .map(|n| (n as i64 - 1, uuid::Uuid::from_u128(n)))
                .collect::<Vec<_>>()
        );
        assert_eq!(receipts[0].2, "allow");
        assert_eq!(receipts[2].2, "deny");
        assert_eq!(env.count("SELECT size FROM receipt_logs").await, 3);

        type Stored = (
            uuid::Uuid,
            Option<serde_json::Value>,
            Vec<String>,
            Option<serde_json::Value>,
            String,
            i32,
            Option<String>,
        );
        let stored: Vec<Stored> = sqlx::query_as(
            "SELECT decision_id, input, erased, result, bundle_revision, eval_micros, error
             FROM api_decisions ORDER BY decision_id",
        )
        .fetch_all(&env.pool)
        .await
        .unwrap();
        assert_eq!(stored.len(), 4);
        for (want, got) in rows.iter().zip(&stored) {
            assert_eq!(got.0, want.decision_id);
            assert_eq!(got.1, want.input);
            assert_eq!(got.2, want.erased);
            assert_eq!(got.3, want.result);
            assert_eq!(got.4, want.bundle_revision);
            assert_eq!(got.5, i32::MAX);
            assert_eq!(got.6, want.error);
        }
        // No input (SQL NULL) and an input of JSON null stay apart.
        assert_eq!(
            env.count("SELECT count(*) FROM api_decisions WHERE input IS NULL")
                .await,
            1
        );
        assert_eq!(
            env.count("SELECT count(*) FROM api_decisions WHERE input = 'null'::jsonb")
                .await,
            1
        );
        env.cleanup().await;
    });
}

#[test]
fn migrations_are_idempotent_and_create_monthly_partitions() {
    block_on(async {
        let env = TestEnv::new("migrate").await;
        portcullis::sinks::postgres::migrate(&env.config.postgres)
            .await
            .expect("second migrate is a no-op");
        let month = Utc::now().format("events_%Y_%m").to_string();
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&month)
            .fetch_one(&env.pool)
            .await
            .unwrap();
        assert!(exists, "partition {month} missing");
        env.cleanup().await;
    });
}
