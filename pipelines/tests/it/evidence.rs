//! Receipts on the real services: every stream and API decision leaves one in its tenant's
//! log, written with it and sealed under signed checkpoints; the API proves a receipt; an
//! exported bundle verifies offline; and each way of tampering with the log in Postgres (a
//! receipt edited, deleted, inserted, reordered, rewritten with its hashes; a checkpoint
//! altered, forged, forked or rolled back) is named by `verify`, while the engine refuses to
//! sign a log that was altered or shrank.

use std::time::Duration;

use chrono::Utc;
use portcullis::evidence::{
    append_receipts, export_bundle, load_log_key, EvidenceStoreError, ReceiptRow, Sealer,
};
use portcullis::runtime::block_on;
use portcullis_engine::evidence::{
    check_tree, log_origin, sign_checkpoint, BundleCheck, BundleHeader, CheckpointBody, Finding,
    Hash, HashText, LogKey, Report,
};
use serde_json::{json, Value};

use crate::common::{http_get, request, usual_cloudtrail, TestEnv, ACME_ACCOUNT};

const WAIT: Duration = Duration::from_secs(30);
const EVENTS: i64 = 40;
const QUERIES: i64 = 5;
const TOTAL: i64 = EVENTS + QUERIES;

async fn get_json(api: &crate::common::Api, path: &str) -> (u16, Value) {
    let (status, body) = http_get(api, path).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

async fn export(env: &TestEnv) -> Vec<u8> {
    let mut out = Vec::new();
    export_bundle(
        &env.pool,
        &env.config.evidence.origin,
        "acme",
        None,
        None,
        &mut out,
        |_, _| {},
    )
    .await
    .expect("export");
    out
}

fn verify(bundle: &[u8], trusted: Option<&[String]>) -> Report {
    let text = std::str::from_utf8(bundle).unwrap();
    let mut lines = text.lines();
    let header: BundleHeader = serde_json::from_str(lines.next().unwrap()).unwrap();
    let mut check = BundleCheck::new(&header, trusted).unwrap();
    for (n, line) in lines.enumerate() {
        check.line(n as u64 + 2, line);
    }
    check.finish(None)
}

/// Runs `sql` as someone who got past the append-only triggers.
async fn tamper(env: &TestEnv, sql: &str) {
    let mut tx = env.pool.begin().await.unwrap();
    // The tables' owner may switch their triggers off: what the triggers stop is a mistake,
    // not an owner set on it; what such an owner does, `verify` tells.
    const TABLES: [&str; 3] = ["receipts", "receipt_hashes", "receipt_checkpoints"];
    for t in TABLES {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {t} DISABLE TRIGGER USER"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    for t in TABLES {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {t} ENABLE TRIGGER USER"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Tampers with `sql`, exports, verifies, undoes with `undo`; the findings.
async fn findings_after(env: &TestEnv, sql: &str, undo: &str) -> Vec<Finding> {
    tamper(env, sql).await;
    let report = verify(&export(env).await, None);
    tamper(env, undo).await;
    report.findings
}

fn assert_named(findings: &[Finding], want: &Finding) {
    assert!(
        findings.contains(want),
        "expected {want:?} ({want}) among {findings:?}"
    );
}

/// A checkpoint of acme's log signed by `key` now.
fn signed(env: &TestEnv, key: &LogKey, size: u64, root: Hash) -> String {
    sign_checkpoint(
        &CheckpointBody {
            origin: log_origin(&env.config.evidence.origin, "acme"),
            size,
            root,
            time: Utc::now(),
        },
        key,
    )
    .unwrap()
}

#[test]
fn receipts_are_proven_exported_verified_and_every_tampering_is_named() {
    block_on(async {
        let mut env = TestEnv::new("evidence").await;
        env.config.evidence.checkpoint_interval_ms = 200;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());

        // Decisions from the stream and the decision API.
        let batch: Vec<(&str, Vec<u8>)> = (0..EVENTS as usize)
            .map(|i| {
                (
                    ACME_ACCOUNT,
                    serde_json::to_vec(&usual_cloudtrail(i)).unwrap(),
                )
            })
            .collect();
        env.produce(&batch).await;
        let query = json!({"input": {"subject": {"tenant_id": "acme", "user_id": "alice"},
            "action": "read", "resource": {"type": "sensor_data", "region": "EU"}}});
        for _ in 0..QUERIES {
            let (status, body) = request(
                &api,
                "POST",
                "/v1/data/tenants/acme/allow",
                &[],
                query.to_string().as_bytes(),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
        env.expect_count("SELECT count(*) FROM receipts", TOTAL, WAIT)
            .await;
        env.expect_count(
            "SELECT coalesce(max(size), 0) FROM receipt_checkpoints",
            TOTAL,
            WAIT,
        )
        .await;
        // One receipt per decision, at indexes 0..TOTAL.
        assert_eq!(
            env.count(
                "SELECT count(*) FROM receipts r WHERE EXISTS (SELECT 1 FROM decisions d WHERE d.decision_id = r.decision_id)
                 OR EXISTS (SELECT 1 FROM api_decisions a WHERE a.decision_id = r.decision_id)"
            )
            .await,
            TOTAL
        );
        assert_eq!(
            env.count("SELECT max(leaf_index) FROM receipts").await,
            TOTAL - 1
        );

        // The API proves a receipt, found by index or by its decision.
        let (status, found) = get_json(&api, "/v1/receipts/acme/3").await;
        assert_eq!(status, 200, "{found}");
        let r = &found["result"];
        assert_eq!(r["status"], "verified", "{r}");
        assert_eq!(r["receipt"]["tenant"], "acme");
        assert!(!r["inclusion_proof"].as_array().unwrap().is_empty());
        let decision: uuid::Uuid =
            sqlx::query_scalar("SELECT decision_id FROM decisions WHERE event_id = 'usual-5'")
                .fetch_one(&env.pool)
                .await
                .unwrap();
        let (status, found) = get_json(
            &api,
            &format!("/v1/receipts?tenant_id=acme&decision_id={decision}"),
        )
        .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["result"]["receipt"]["subject"], "usual-5");
        assert_eq!(found["result"]["receipt"]["kind"], "event");
        // Another tenant's reader learns nothing of acme's receipts.
        let globex = api.with_token(Some(&env.token(&["read:globex"]).await));
        assert_eq!(get_json(&globex, "/v1/receipts/acme/3").await.0, 403);
        let (_, listed) = get_json(&globex, "/v1/checkpoints").await;
        assert_eq!(listed["result"], json!([]), "{listed}");
        assert_eq!(get_json(&api, "/v1/receipts/acme/99999").await.0, 404);
        assert_eq!(get_json(&api, "/v1/receipts/acme/x").await.0, 400);

        // Checkpoints and a consistency proof between the first and the last.
        let (_, listed) = get_json(&api, "/v1/checkpoints?tenant_id=acme&limit=500").await;
        let cps = listed["result"].as_array().unwrap().clone();
        let (last, first) = (&cps[0], &cps[cps.len() - 1]);
        let (from, to) = (
            first["size"].as_u64().unwrap(),
            last["size"].as_u64().unwrap(),
        );
        if from < to {
            let (status, proof) = get_json(
                &api,
                &format!("/v1/checkpoints/acme/consistency?from={from}&to={to}"),
            )
            .await;
            assert_eq!(status, 200, "{proof}");
            let hashes: Vec<Hash> =
                serde_json::from_value::<Vec<HashText>>(proof["result"]["proof"].clone())
                    .unwrap()
                    .into_iter()
                    .map(Hash::from)
                    .collect();
            let root = |c: &Value| -> Hash {
                serde_json::from_value::<HashText>(c["root"].clone())
                    .unwrap()
                    .into()
            };
            check_tree(&hashes, to, root(last), from, root(first)).expect("consistent");
        }
        let (_, keys) = get_json(&api, "/v1/evidence-keys").await;
        let public = keys["result"][0]["public_key"].as_str().unwrap().to_owned();
        engine.stop().await.unwrap();

        // Whole, the bundle verifies, with the bundle's keys or the pinned one; not with a
        // stranger's.
        let bundle = export(&env).await;
        let report = verify(&bundle, None);
        assert!(report.is_ok(), "{:?}", report.findings);
        assert_eq!(report.receipts, TOTAL as u64);
        assert!(verify(&bundle, Some(std::slice::from_ref(&public))).is_ok());
        let stranger = LogKey::from_seed("portcullis.local", [42; 32]).unwrap();
        let report = verify(&bundle, Some(&[stranger.public_text().to_owned()]));
        assert!(report
            .findings
            .iter()
            .any(|f| matches!(f, Finding::UnknownKey { .. })));

        // Receipts tampered with in Postgres.
        let save = "CREATE TABLE saved AS SELECT * FROM receipts";
        tamper(&env, save).await;
        let restore = "DELETE FROM receipts; INSERT INTO receipts SELECT * FROM saved";
        let edited = findings_after(
            &env,
            r#"UPDATE receipts SET body = replace(body, '"tenant":"acme"', '"tenant":"acme" ') WHERE leaf_index = 7"#,
            restore,
        )
        .await;
        assert_eq!(edited, vec![Finding::Edited { index: 7 }]);
        let deleted =
            findings_after(&env, "DELETE FROM receipts WHERE leaf_index = 11", restore).await;
        assert_eq!(deleted, vec![Finding::Deleted { index: 11 }]);
        let hidden = findings_after(
            &env,
            "DELETE FROM receipts WHERE leaf_index = 11;
             UPDATE receipts SET leaf_index = leaf_index + 1000000 WHERE leaf_index > 11;
             UPDATE receipts SET leaf_index = leaf_index - 1000001 WHERE leaf_index > 1000000",
            restore,
        )
        .await;
        assert_eq!(hidden, vec![Finding::Deleted { index: 11 }]);
        let reordered = findings_after(
            &env,
            "UPDATE receipts SET leaf_index = CASE leaf_index WHEN 20 THEN 1000021 ELSE 1000020 END
                 WHERE leaf_index IN (20, 21);
             UPDATE receipts SET leaf_index = leaf_index - 1000000 WHERE leaf_index > 1000000",
            restore,
        )
        .await;
        assert_eq!(reordered.len(), 1, "{reordered:?}");
        assert!(
            matches!(reordered[0], Finding::Reordered { .. }),
            "{reordered:?}"
        );
        let inserted = findings_after(
            &env,
            "UPDATE receipts SET leaf_index = leaf_index + 1000001 WHERE leaf_index >= 30;
             UPDATE receipts SET leaf_index = leaf_index - 1000000 WHERE leaf_index > 1000000;
             INSERT INTO receipts (tenant_id, leaf_index, decision_id, kind, subject, outcome, body, leaf_hash)
             SELECT tenant_id, 30, gen_random_uuid(), kind, subject, 'allow',
                    replace(body, '\"outcome\":\"deny\"', '\"outcome\":\"allow\"') || ' ', leaf_hash
             FROM receipts WHERE leaf_index = 31",
            restore,
        )
        .await;
        assert_named(&inserted, &Finding::Inserted { position: 30 });
        // The receipt and the log's own hashes rewritten together: caught at the checkpoint.
        tamper(
            &env,
            "CREATE TABLE saved_hashes AS SELECT * FROM receipt_hashes",
        )
        .await;
        let rewritten = findings_after(
            &env,
            r#"UPDATE receipts SET body = body || ' ', leaf_hash = sha256('\x00'::bytea || convert_to(body || ' ', 'UTF8')) WHERE leaf_index = 2;
               UPDATE receipt_hashes h
                 SET hashes = overlay(h.hashes PLACING r.leaf_hash FROM ((2 - h.first_node) * 32 + 1)::int FOR 32)
                 FROM receipts r
                 WHERE h.level = 0 AND h.first_node <= 2 AND h.first_node + length(h.hashes) / 32 > 2
                   AND r.leaf_index = 2"#,
            "DELETE FROM receipt_hashes; INSERT INTO receipt_hashes SELECT * FROM saved_hashes;
             DELETE FROM receipts; INSERT INTO receipts SELECT * FROM saved",
        )
        .await;
        assert!(
            rewritten
                .iter()
                .any(|f| matches!(f, Finding::Rewritten { .. })),
            "{rewritten:?}"
        );
        assert!(verify(&export(&env).await, None).is_ok());

        // Checkpoints tampered with in Postgres: altered, signed by an unknown key, a fork
        // signed with the log's own key (stolen), a rollback.
        let key = load_log_key(&env.config.evidence.key_file)
            .unwrap()
            .unwrap();
        let altered = findings_after(
            &env,
            &format!(
                "UPDATE receipt_checkpoints SET note = replace(note, E'\\n{TOTAL}\\n', E'\\n{}\\n') WHERE size = {TOTAL}",
                TOTAL + 1
            ),
            &format!(
                "UPDATE receipt_checkpoints SET note = replace(note, E'\\n{}\\n', E'\\n{TOTAL}\\n') WHERE size = {TOTAL}",
                TOTAL + 1
            ),
        )
        .await;
        assert!(
            altered
                .iter()
                .any(|f| matches!(f, Finding::BadSignature { .. })),
            "{altered:?}"
        );
        let insert_checkpoint = |size: u64, note: &str, by: &str| {
            format!(
                "INSERT INTO receipt_checkpoints (tenant_id, size, root, note, signed_by, signed_at)
                 VALUES ('acme', {size}, '\\x{}', '{}', '{by}', now())",
                "00".repeat(32),
                note.replace('\'', "''")
            )
        };
        let delete_extra =
            format!("DELETE FROM receipt_checkpoints WHERE size > {TOTAL} OR size = 10");
        let unknown = findings_after(
            &env,
            &insert_checkpoint(
                TOTAL as u64 + 5,
                &signed(&env, &stranger, TOTAL as u64 + 5, Hash([1; 32])),
                &stranger.label(),
            ),
            &delete_extra,
        )
        .await;
        assert!(
            unknown
                .iter()
                .any(|f| matches!(f, Finding::UnknownKey { .. })),
            "{unknown:?}"
        );
        let forked = findings_after(
            &env,
            &insert_checkpoint(
                TOTAL as u64 + 5,
                &signed(&env, &key, TOTAL as u64 + 5, Hash([1; 32])),
                &key.label(),
            ),
            &delete_extra,
        )
        .await;
        assert_named(
            &forked,
            &Finding::Forked {
                from: TOTAL as u64,
                to: TOTAL as u64 + 5,
            },
        );
        // A smaller tree signed after the larger one (its true root: still rolled back).
        let root10 = {
            let mut conn = env.pool.acquire().await.unwrap();
            portcullis::evidence::frontier_at(&mut conn, "acme", 10)
                .await
                .unwrap()
                .root()
        };
        let no_ten = "DELETE FROM receipt_checkpoints WHERE size = 10";
        tamper(&env, no_ten).await;
        let rolled = findings_after(
            &env,
            &insert_checkpoint(10, &signed(&env, &key, 10, root10), &key.label()),
            &delete_extra,
        )
        .await;
        assert_named(
            &rolled,
            &Finding::RolledBack {
                from: TOTAL as u64,
                to: 10,
            },
        );

        // The engine's sealer refuses a log whose hashes changed, or that shrank.
        let sealer = Sealer::new(env.pool.clone(), key.clone(), &env.config.evidence.origin);
        let mut tx = env.pool.begin().await.unwrap();
        let extra = query_receipt("acme");
        append_receipts(&mut tx, &[&extra]).await.unwrap();
        tx.commit().await.unwrap();
        tamper(
            &env,
            // The largest subtree under the last checkpoint: part of the edge the next extends.
            "UPDATE receipt_hashes SET hashes = overlay(hashes PLACING sha256('forged') FROM 1 FOR 32)
             WHERE first_node = 0 AND level = (SELECT max(level) FROM receipt_hashes)",
        )
        .await;
        match sealer.seal("acme").await {
            Err(EvidenceStoreError::Refused(why)) => assert!(why.contains("altered"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        tamper(
            &env,
            "DELETE FROM receipt_hashes; INSERT INTO receipt_hashes SELECT * FROM saved_hashes",
        )
        .await;
        tamper(&env, "UPDATE receipt_logs SET size = size - 3").await;
        match sealer.seal("acme").await {
            Err(EvidenceStoreError::Refused(why)) => assert!(why.contains("rolled back"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        tamper(&env, "UPDATE receipt_logs SET size = size + 3").await;
        let sealed = sealer
            .seal("acme")
            .await
            .unwrap()
            .expect("a new checkpoint");
        assert_eq!(sealed.size, TOTAL as u64 + 1);

        // The command line: export, then verify a good and an edited file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acme.bundle");
        let (code, out, err) = env.cli(&[
            "evidence",
            "export",
            "--tenant",
            "acme",
            "-o",
            path.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = env.cli(&["verify", "-q", path.to_str().unwrap(), "--key", &public]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("OK"), "{out}");
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replacen("{\"v\":1,", "{\"v\":1 ,", 1);
        std::fs::write(&path, edited).unwrap();
        let (code, out, _) = env.cli(&["verify", "-q", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("receipt 0 was edited"), "{out}");
        env.cleanup().await;
    });
}

/// A decision API query's receipt for `tenant`, with a fresh decision.
fn query_receipt(tenant: &str) -> ReceiptRow {
    ReceiptRow::of(&portcullis_engine::evidence::Receipt::of_query(
        tenant,
        uuid::Uuid::new_v4(),
        "data.tenants.acme.allow",
        None,
        Some(&json!(true)),
        "r",
        "sha256:00",
        Utc::now(),
    ))
}

async fn append(pool: &sqlx::PgPool, rows: &[&ReceiptRow]) -> u64 {
    let mut tx = pool.begin().await.unwrap();
    let stored = append_receipts(&mut tx, rows).await.unwrap();
    tx.commit().await.unwrap();
    stored
}

#[test]
fn receipts_appended_again_are_stored_once_at_the_next_indexes() {
    block_on(async {
        let env = TestEnv::new("evidence_again").await;
        let (a1, a2, g1) = (
            query_receipt("acme"),
            query_receipt("acme"),
            query_receipt("globex"),
        );
        // A fresh batch goes in whole (the COPY), each tenant's log from 0.
        assert_eq!(append(&env.pool, &[&a1, &g1]).await, 2);
        // A batch holding one stored already, and one twice (a redelivery): only the new one,
        // once, at the next index.
        assert_eq!(append(&env.pool, &[&a1, &a2, &a2]).await, 1);
        let (a3, a4) = (query_receipt("acme"), query_receipt("acme"));
        assert_eq!(
            append(&env.pool, &[&a3, &a4]).await,
            2,
            "the common path again"
        );
        let rows: Vec<(String, i64, uuid::Uuid)> = sqlx::query_as(
            "SELECT tenant_id, leaf_index, decision_id FROM receipts ORDER BY tenant_id, leaf_index",
        )
        .fetch_all(&env.pool)
        .await
        .unwrap();
        let want = [
            ("acme", 0, a1.decision_id),
            ("acme", 1, a2.decision_id),
            ("acme", 2, a3.decision_id),
            ("acme", 3, a4.decision_id),
            ("globex", 0, g1.decision_id),
        ];
        let got: Vec<_> = rows.iter().map(|(t, i, d)| (t.as_str(), *i, *d)).collect();
        assert_eq!(got, want);
        let sizes: Vec<(String, i64)> =
            sqlx::query_as("SELECT tenant_id, size FROM receipt_logs ORDER BY tenant_id")
                .fetch_all(&env.pool)
                .await
                .unwrap();
        assert_eq!(sizes, [("acme".into(), 4), ("globex".into(), 1)]);
        env.cleanup().await;
    });
}
