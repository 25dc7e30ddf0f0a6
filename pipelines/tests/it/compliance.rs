//! Compliance packs in the event path, on the real services: CloudTrail events through Kafka
//! (plain and as a gzip log file) raise findings that open one violation per tenant, control
//! and resource; a redelivery counts nothing twice; a failed attempt is a finding but opens no
//! violation unless its control is about refusals; a resolved violation re-opens when its
//! control fires again; the lifecycle is worked through the API with the `comply` scope.

use std::io::Write;
use std::time::Duration;

use portcullis::runtime::block_on;
use serde_json::{json, Value};

use crate::common::{cloudtrail, http_get, post_json, TestEnv, ACME_ACCOUNT};

const WAIT: Duration = Duration::from_secs(30);
const GLOBEX_ACCOUNT: &str = "222222222222";

fn stop_logging(id: &str, account: &str, refused: bool) -> Value {
    let mut rec = cloudtrail(id, "StopLogging", None);
    rec["eventSource"] = json!("cloudtrail.amazonaws.com");
    rec["requestParameters"] = json!({"name": "main"});
    rec["recipientAccountId"] = json!(account);
    rec["userIdentity"]["accountId"] = json!(account);
    rec["userIdentity"]["arn"] = json!(format!("arn:aws:iam::{account}:user/alice"));
    if refused {
        rec["errorCode"] = json!("AccessDenied");
        rec["errorMessage"] = json!("User is not authorized to perform cloudtrail:StopLogging");
    }
    rec
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

async fn violation(env: &TestEnv, tenant: &str, control: &str) -> (String, String, i64, i32) {
    sqlx::query_as(
        "SELECT violation_id::text, status, occurrences, times_reopened
         FROM compliance_violations WHERE tenant_id = $1 AND control_id = $2",
    )
    .bind(tenant)
    .bind(control)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

/// A violation's history, as `GET /v1/compliance/violations/{id}` gives it: (status, by).
fn history_steps(one: &Value) -> Vec<(&str, &str)> {
    one["result"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["status"].as_str().unwrap(),
                h["changed_by"].as_str().unwrap(),
            )
        })
        .collect()
}

#[test]
fn packs_open_violations_once_and_their_lifecycle_is_worked_through_the_api() {
    block_on(async {
        let env = TestEnv::new("compliance").await;
        env.map_account("globex", GLOBEX_ACCOUNT).await;
        let engine = env.start().await;
        // Each record made once: a redelivery is the same bytes again.
        let records: std::collections::HashMap<&str, Vec<u8>> =
            [("stop-1", false), ("stop-2", true), ("stop-3", false)]
                .into_iter()
                .map(|(id, refused)| {
                    std::thread::sleep(Duration::from_millis(2));
                    let rec = stop_logging(id, ACME_ACCOUNT, refused);
                    (id, serde_json::to_vec(&rec).unwrap())
                })
                .collect();
        let stop = |id: &str, _refused: bool| records[id].clone();
        // A log file as CloudTrail writes it to S3: gzip, with a record in the zone-less time
        // format exporters write.
        let mut created = cloudtrail("create-1", "CreateUser", None);
        created["eventSource"] = json!("iam.amazonaws.com");
        created["requestParameters"] = json!({"userName": "mallory"});
        created["eventTime"] = json!(chrono::Utc::now()
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string());
        // Mallory then signs in to the console without MFA (CIS 4.2): the violation names the
        // user as the inventory does.
        let mut signed_in = cloudtrail("login-1", "ConsoleLogin", Some("No"));
        signed_in["userIdentity"] = json!({"type": "IAMUser", "userName": "mallory",
            "arn": format!("arn:aws:iam::{ACME_ACCOUNT}:user/mallory"), "accountId": ACME_ACCOUNT});
        signed_in["responseElements"] = json!({"ConsoleLogin": "Success"});
        let log_file =
            gzip(&serde_json::to_vec(&json!({"Records": [created, signed_in]})).unwrap());
        env.produce(&[
            (ACME_ACCOUNT, stop("stop-1", false)),
            (ACME_ACCOUNT, stop("stop-2", true)),
            (ACME_ACCOUNT, log_file),
            (
                GLOBEX_ACCOUNT,
                serde_json::to_vec(&stop_logging("g-stop-1", GLOBEX_ACCOUNT, false)).unwrap(),
            ),
        ])
        .await;
        // stop-1: CIS 4.5 and the detection; stop-2 (refused): 4.1, 4.5 and the detection as
        // attempts; the user made by hand; mallory's sign-in; globex's stop: two of its own.
        env.expect_count("SELECT count(*) FROM compliance_findings", 9, WAIT)
            .await;
        assert_eq!(
            env.count("SELECT count(*) FROM compliance_findings WHERE NOT succeeded")
                .await,
            3
        );
        // Counted for alerting: the change that happened apart from the refused attempt.
        let mut metrics = String::new();
        let counted = [
            r#"portcullis_compliance_findings_total{call="succeeded",control="cloudtrail_logging_stopped",pack="cloudtrail_detections",severity="critical",tenant="acme"} 1"#,
            r#"portcullis_compliance_findings_total{call="failed",control="cloudtrail_logging_stopped",pack="cloudtrail_detections",severity="critical",tenant="acme"} 1"#,
            r#"portcullis_compliance_findings_total{call="failed",control="4.1",pack="cis_aws_monitoring",severity="medium",tenant="acme"} 1"#,
        ];
        for _ in 0..50 {
            metrics = http_get(engine.http_addr(), "/metrics").await.1;
            if counted.iter().all(|c| metrics.contains(c)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for c in counted {
            assert!(metrics.contains(c), "{c} in {metrics}");
        }
        let (stopped, status, occurrences, _) =
            violation(&env, "acme", "cloudtrail_logging_stopped").await;
        assert_eq!(
            (status.as_str(), occurrences),
            ("open", 1),
            "the refused attempt opens nothing"
        );
        assert_eq!(
            violation(&env, "acme", "4.1").await.2,
            1,
            "4.1 is about refusals"
        );
        let (resource,): (String,) = sqlx::query_as(
            "SELECT resource_id FROM compliance_violations
             WHERE tenant_id = 'acme' AND control_id = 'iam_user_created_by_person'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(resource, "mallory");
        assert_eq!(
            env.count("SELECT count(*) FROM compliance_violations WHERE tenant_id = 'acme'")
                .await,
            5
        );

        // A redelivery of stop-1 adds nothing; a new stop counts once.
        env.produce(&[
            (ACME_ACCOUNT, stop("stop-1", false)),
            (ACME_ACCOUNT, stop("stop-3", false)),
        ])
        .await;
        env.expect_count("SELECT count(*) FROM compliance_findings", 10, WAIT)
            .await;
        env.expect_count("SELECT count(*) FROM events", 7, WAIT)
            .await;
        assert_eq!(
            violation(&env, "acme", "cloudtrail_logging_stopped")
                .await
                .2,
            2
        );

        // The lifecycle, through the API: reading needs read or comply, changing needs comply.
        let api = env.api(engine.http_addr());
        let reader = api.with_token(Some(&env.token(&["read:acme"]).await));
        let worker = api.with_token(Some(&env.token(&["comply:acme"]).await));
        let outsider = api.with_token(Some(&env.token(&["comply:globex"]).await));
        let (code, listed) = http_get(
            &reader,
            "/v1/compliance/violations?tenant_id=acme&active=true",
        )
        .await;
        assert_eq!(code, 200, "{listed}");
        let listed: Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed["result"].as_array().unwrap().len(), 5);
        let (code, _) = http_get(&reader, "/v1/compliance/violations?tenant_id=globex").await;
        assert_eq!(code, 403, "acme's reader sees no globex violation");
        let path = format!("/v1/compliance/violations/{stopped}");
        let (code, one) = http_get(&reader, &path).await;
        assert_eq!(code, 200, "{one}");
        let one: Value = serde_json::from_str(&one).unwrap();
        let evidence: Vec<&str> = one["result"]["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            evidence,
            ["stop-3", "stop-1"],
            "newest first; the refused attempt is not"
        );
        let status = format!("{path}/status");
        let (code, refused) = post_json(&reader, &status, &json!({"status": "acknowledged"})).await;
        assert_eq!(code, 404, "a reader may not change it: {refused}");
        let (code, refused) = post_json(&outsider, &status, &json!({"status": "resolved"})).await;
        assert_eq!(code, 404, "nor another tenant's worker: {refused}");
        let (code, refused) = post_json(&worker, &status, &json!({"status": "suppressed"})).await;
        assert_eq!(
            code, 409,
            "a suppression needs a reason and an end: {refused}"
        );
        let (code, ack) = post_json(
            &worker,
            &status,
            &json!({"status": "acknowledged", "reason": "SEC-41: looking"}),
        )
        .await;
        assert_eq!(
            (code, ack["result"]["status"].as_str()),
            (200, Some("acknowledged")),
            "{ack}"
        );
        let (code, done) = post_json(&worker, &status, &json!({"status": "resolved"})).await;
        assert_eq!(
            (code, done["result"]["status"].as_str()),
            (200, Some("resolved")),
            "{done}"
        );
        let (code, again) = post_json(&worker, &status, &json!({"status": "acknowledged"})).await;
        assert_eq!(
            code, 409,
            "a resolved violation is re-opened, not acknowledged: {again}"
        );

        // The control fires again after the resolution: the same violation re-opens. (A late
        // record of a change from before it would not.)
        let again = serde_json::to_vec(&stop_logging("stop-4", ACME_ACCOUNT, false)).unwrap();
        env.produce(&[(ACME_ACCOUNT, again)]).await;
        env.expect_count(
            "SELECT count(*) FROM compliance_violations
             WHERE control_id = 'cloudtrail_logging_stopped' AND tenant_id = 'acme' AND status = 'open'",
            1,
            WAIT,
        )
        .await;
        let (id, status, occurrences, reopened) =
            violation(&env, "acme", "cloudtrail_logging_stopped").await;
        assert_eq!(
            (id.as_str(), status.as_str(), occurrences, reopened),
            (stopped.as_str(), "open", 3, 1)
        );
        let (_, history) = http_get(&reader, &path).await;
        let history: Value = serde_json::from_str(&history).unwrap();
        assert_eq!(
            history_steps(&history),
            [
                ("open", "portcullis"),
                ("acknowledged", "test-comply:acme"),
                ("resolved", "test-comply:acme"),
                ("open", "portcullis"),
            ]
        );
        // The inventory: the trail changed after its violation was resolved has drifted; the
        // user made by hand is there, created by alice.
        let (code, inventory) = http_get(&reader, "/v1/compliance/resources?tenant_id=acme").await;
        assert_eq!(code, 200, "{inventory}");
        let inventory: Value = serde_json::from_str(&inventory).unwrap();
        let find = |id: &str| {
            inventory["result"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["resource_id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("{id} in {inventory}"))
        };
        let trail = find("main");
        assert_eq!(trail["resource_type"], "AWS::CloudTrail::Trail");
        assert_eq!(
            (trail["last_event_id"].as_str(), trail["drifted"].as_bool()),
            (Some("stop-4"), Some(true))
        );
        let user = find("mallory");
        assert_eq!(
            (
                user["last_change"].as_str(),
                user["state"].as_str(),
                user["active_violations"].as_i64()
            ),
            (Some("created"), Some("present"), Some(2)),
            "made by hand, and signed in without MFA: {user}"
        );
        assert!(
            user["last_changed_by"]
                .as_str()
                .unwrap()
                .ends_with("user/alice"),
            "{user}"
        );
        let (_, drifted) = http_get(
            &reader,
            "/v1/compliance/resources?tenant_id=acme&drifted=true",
        )
        .await;
        let drifted: Value = serde_json::from_str(&drifted).unwrap();
        assert_eq!(drifted["result"].as_array().unwrap().len(), 1, "{drifted}");
        // Globex's violation is its own.
        assert_eq!(
            violation(&env, "globex", "cloudtrail_logging_stopped")
                .await
                .1,
            "open"
        );
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn automatic_remediation_goes_out_as_a_command_and_its_result_resolves_the_violation() {
    block_on(async {
        let mut env = TestEnv::new("remediation").await;
        env.config.compliance.send_interval_ms = 200;
        // Executors here are trusted to act: the default is a dry run.
        env.config.compliance.dry_run = false;
        let engine = env.start().await;
        let commands = executor(&env);

        let mut removed = cloudtrail("pab-1", "DeleteBucketPublicAccessBlock", None);
        removed["requestParameters"] = json!({"bucketName": "reports"});
        removed["awsRegion"] = json!("eu-west-1");
        env.produce(&[(ACME_ACCOUNT, serde_json::to_vec(&removed).unwrap())])
            .await;
        let command = next_command(&commands).await;
        assert_eq!(command["action"], "s3.put_public_access_block", "{command}");
        assert_eq!(
            (
                command["resource_id"].as_str(),
                command["account"].as_str(),
                command["region"].as_str()
            ),
            (Some("reports"), Some(ACME_ACCOUNT), Some("eu-west-1"))
        );
        assert_eq!(command["dry_run"], false);
        let remediation = command["remediation_id"].as_str().unwrap().to_owned();
        env.expect_count(
            "SELECT count(*) FROM compliance_violations
             WHERE control_id = 's3_public_access_block_removed' AND status = 'remediating'",
            1,
            WAIT,
        )
        .await;

        // The executor reports success (twice: a redelivery), then a stranger and garbage.
        let result = json!({"remediation_id": remediation, "status": "succeeded",
                            "dry_run": false, "executor": "test-executor", "detail": "all four on"});
        let unknown =
            json!({"remediation_id": uuid::Uuid::new_v4(), "status": "failed", "dry_run": false});
        env.report_remediation_results(&[
            result.clone(),
            result,
            unknown,
            json!("{\"remediation_id\": 5"),
        ])
        .await;
        env.expect_count(
            "SELECT count(*) FROM dead_letters WHERE reason LIKE 'remediation result refused:%'",
            2,
            WAIT,
        )
        .await;
        let (status, detail, executor): (String, String, String) = sqlx::query_as(
            "SELECT status, detail, executor FROM remediation_actions WHERE remediation_id = $1::uuid",
        )
        .bind(&remediation)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(
            (status.as_str(), detail.as_str(), executor.as_str()),
            ("succeeded", "all four on", "test-executor")
        );
        let history: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT h.status, h.reason FROM compliance_violation_history h
             JOIN compliance_violations v USING (violation_id)
             WHERE v.control_id = 's3_public_access_block_removed' ORDER BY h.at",
        )
        .fetch_all(&env.pool)
        .await
        .unwrap();
        let steps: Vec<&str> = history.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            steps,
            ["open", "remediating", "resolved"],
            "the redelivery changed nothing"
        );
        assert_eq!(
            history[2].1.as_deref(),
            Some("remediated by test-executor: s3.put_public_access_block")
        );
        // One action per open period: nothing more was sent.
        assert_eq!(
            env.count("SELECT count(*) FROM remediation_actions").await,
            1
        );
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

/// An executor's consumer of the commands topic, from its start.
fn executor(env: &TestEnv) -> rdkafka::consumer::StreamConsumer {
    use rdkafka::consumer::Consumer;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let commands: rdkafka::consumer::StreamConsumer =
        portcullis::sources::kafka::client_config(&env.config.kafka)
            .set("group.id", format!("executor_{tag}"))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
    commands
        .subscribe(&[&env.config.compliance.commands_topic])
        .unwrap();
    commands
}

/// Reads the next command from `commands` within the wait.
async fn next_command(commands: &rdkafka::consumer::StreamConsumer) -> Value {
    use rdkafka::Message;
    let message = tokio::time::timeout(WAIT, commands.recv())
        .await
        .expect("a command within the wait")
        .unwrap();
    serde_json::from_slice(message.payload().unwrap()).unwrap()
}

#[test]
fn a_dry_run_is_asked_again_for_real_once_dry_run_is_off() {
    block_on(async {
        let mut env = TestEnv::new("remediate_again").await;
        env.config.compliance.send_interval_ms = 200;
        assert!(env.config.compliance.dry_run, "dry run is the default");
        let engine = env.start().await;
        let commands = executor(&env);

        // StopLogging: cloudtrail_logging_stopped remediates by itself, CIS 4.5 is a person's
        // task.
        env.produce(&[(
            ACME_ACCOUNT,
            serde_json::to_vec(&stop_logging("stop-1", ACME_ACCOUNT, false)).unwrap(),
        )])
        .await;
        let first = next_command(&commands).await;
        assert_eq!(
            (first["action"].as_str(), first["dry_run"].as_bool()),
            (Some("cloudtrail.start_logging"), Some(true))
        );
        env.report_remediation_results(&[
            json!({"remediation_id": first["remediation_id"], "status": "succeeded",
                     "dry_run": true, "executor": "test-executor", "detail": "would start main"}),
        ])
        .await;
        env.expect_count(
            "SELECT count(*) FROM remediation_actions WHERE status = 'succeeded' AND dry_run",
            1,
            WAIT,
        )
        .await;
        let (id, status, _, _) = violation(&env, "acme", "cloudtrail_logging_stopped").await;
        assert_eq!(status, "open", "a dry run changes nothing");
        let (manual, _, _, _) = violation(&env, "acme", "4.5").await;
        engine.stop().await.unwrap();

        // The team trusts its executor now: the engine runs without dry run, and someone asks
        // for the command again.
        let mut config = env.config.clone();
        config.compliance.dry_run = false;
        let engine = env.start_with(config).await;
        let api = env.api(engine.http_addr());
        let worker = api.with_token(Some(&env.token_named("alice", &["comply:acme"]).await));
        let reader = api.with_token(Some(&env.token(&["read:acme"]).await));
        let outsider = api.with_token(Some(&env.token(&["comply:globex"]).await));
        let path = format!("/v1/compliance/violations/{id}/remediate");
        for who in [&reader, &outsider] {
            let (code, body) = post_json(who, &path, &json!({})).await;
            assert_eq!(code, 404, "{body}");
        }
        let (code, body) = post_json(
            &worker,
            &format!("/v1/compliance/violations/{manual}/remediate"),
            &json!({}),
        )
        .await;
        assert_eq!(code, 409, "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("remediates manual")),
            "{body}"
        );
        // Three people click at once: one action, the others told it waits.
        let empty = json!({});
        let answers =
            futures::future::join_all((0..3).map(|_| post_json(&worker, &path, &empty))).await;
        let mut codes: Vec<u16> = answers.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        assert_eq!(codes, [201, 409, 409], "{answers:?}");
        let asked = answers.into_iter().find(|(c, _)| *c == 201).unwrap().1;
        assert_eq!(
            (
                asked["result"]["request"].as_i64(),
                asked["result"]["requested_by"].as_str(),
                asked["result"]["status"].as_str()
            ),
            (Some(1), Some("alice"), Some("pending"))
        );
        // Asked twice while the first still waits (here from the command line): one action.
        let (code, _, err) = env.cli(&["compliance", "remediate", &id, "--as", "bob"]);
        assert_ne!(code, 0);
        assert!(
            err.contains("still pending") || err.contains("still sent"),
            "{err}"
        );

        let second = next_command(&commands).await;
        assert_eq!(second["remediation_id"], asked["result"]["remediation_id"]);
        assert_eq!(
            (
                second["dry_run"].as_bool(),
                second["resource_id"].as_str(),
                second["account"].as_str()
            ),
            (
                Some(false),
                first["resource_id"].as_str(),
                Some(ACME_ACCOUNT)
            )
        );
        env.expect_count(
            "SELECT count(*) FROM compliance_violations
             WHERE control_id = 'cloudtrail_logging_stopped' AND status = 'remediating'",
            1,
            WAIT,
        )
        .await;
        env.report_remediation_results(&[
            json!({"remediation_id": second["remediation_id"], "status": "succeeded",
                     "dry_run": false, "executor": "test-executor", "detail": "started main"}),
        ])
        .await;
        env.expect_count(
            "SELECT count(*) FROM compliance_violations
             WHERE control_id = 'cloudtrail_logging_stopped' AND status = 'resolved'",
            1,
            WAIT,
        )
        .await;
        let (code, body) = post_json(&worker, &path, &json!({})).await;
        assert_eq!(code, 409, "a resolved violation is not remediated: {body}");
        let (code, out, err) = env.cli(&["compliance", "remediations", "--violation", &id]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.lines().next().unwrap().contains("succeeded"), "{out}");

        // The violation shows both actions, its control's remediation, and who asked.
        let (code, one) = http_get(&reader, &format!("/v1/compliance/violations/{id}")).await;
        assert_eq!(code, 200, "{one}");
        let one: Value = serde_json::from_str(&one).unwrap();
        let actions: Vec<(Option<bool>, Option<&str>)> = one["result"]["remediations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["dry_run"].as_bool(), a["requested_by"].as_str()))
            .collect();
        assert_eq!(actions, [(Some(false), Some("alice")), (Some(true), None)]);
        assert_eq!(one["result"]["remediation"]["strategy"], "automatic");
        assert_eq!(
            history_steps(&one),
            [
                ("open", "portcullis"),
                ("open", "alice"),
                ("remediating", "portcullis"),
                ("resolved", "portcullis")
            ]
        );
        // It recurs: its own command goes out for real, and no executor ever answers. Past
        // compliance.result_timeout_secs (a day; here the command is dated back) it is taken
        // as failed and the violation is worked again.
        env.produce(&[(
            ACME_ACCOUNT,
            serde_json::to_vec(&stop_logging("stop-2", ACME_ACCOUNT, false)).unwrap(),
        )])
        .await;
        let third = next_command(&commands).await;
        assert_eq!(third["dry_run"], false);
        env.expect_count(
            "SELECT count(*) FROM compliance_violations
             WHERE control_id = 'cloudtrail_logging_stopped' AND status = 'remediating'",
            1,
            WAIT,
        )
        .await;
        sqlx::query(
            "UPDATE remediation_actions SET sent_at = now() - interval '2 days'
             WHERE remediation_id = $1::uuid",
        )
        .bind(third["remediation_id"].as_str())
        .execute(&env.pool)
        .await
        .unwrap();
        env.expect_count(
            "SELECT count(*) FROM compliance_violations
             WHERE control_id = 'cloudtrail_logging_stopped' AND status = 'open'
               AND reason LIKE '%no result from an executor'",
            1,
            WAIT,
        )
        .await;
        let (code, again) = post_json(&worker, &path, &json!({})).await;
        assert_eq!(code, 201, "nothing waits any more: {again}");
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn scans_judge_each_control_score_the_framework_keep_the_trend_and_render_reports() {
    block_on(async {
        let mut env = TestEnv::new("scans").await;
        env.config.compliance.scan_interval_secs = 2;
        let engine = env.start().await;
        env.produce(&[
            (
                ACME_ACCOUNT,
                serde_json::to_vec(&stop_logging("sc-1", ACME_ACCOUNT, false)).unwrap(),
            ),
            (
                ACME_ACCOUNT,
                serde_json::to_vec(&stop_logging("sc-2", ACME_ACCOUNT, true)).unwrap(),
            ),
        ])
        .await;
        // 4.5 and the detection from sc-1; 4.1 from the refusal.
        env.expect_count("SELECT count(*) FROM compliance_violations", 3, WAIT)
            .await;
        let api = env.api(engine.http_addr());
        let reader = api.with_token(Some(&env.token(&["read:acme"]).await));
        let worker = api.with_token(Some(&env.token(&["comply:acme"]).await));
        let (code, frameworks) =
            http_get(&reader, "/v1/compliance/frameworks?tenant_id=acme").await;
        assert_eq!(code, 200, "{frameworks}");
        assert!(
            frameworks.contains("cis_aws_3.0") && frameworks.contains("mitre_attack"),
            "{frameworks}"
        );

        let ask = json!({"tenant_id": "acme", "framework": "cis_aws_3.0"});
        let (code, refused) = post_json(&reader, "/v1/compliance/scans", &ask).await;
        assert_eq!(code, 403, "scanning needs comply: {refused}");
        let (code, unknown) = post_json(
            &worker,
            "/v1/compliance/scans",
            &json!({"tenant_id": "acme", "framework": "pci"}),
        )
        .await;
        assert_eq!(code, 400, "{unknown}");
        assert!(
            unknown["message"].as_str().unwrap().contains("cis_aws_3.0"),
            "it says what there is: {unknown}"
        );
        let (code, scan) = post_json(&worker, "/v1/compliance/scans", &ask).await;
        assert_eq!(code, 201, "{scan}");
        let scan = &scan["result"];
        let status = |id: &str| {
            scan["controls"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["control_id"] == id)
                .map(|c| c["status"].as_str().unwrap().to_owned())
                .unwrap()
        };
        assert_eq!(
            (
                status("4.1").as_str(),
                status("4.5").as_str(),
                status("4.2").as_str()
            ),
            ("FAIL", "FAIL", "PASS")
        );
        assert_eq!(
            (scan["passed"].as_i64(), scan["failed"].as_i64()),
            (Some(13), Some(2))
        );
        let rate = scan["pass_rate"].as_f64().unwrap();
        assert!((rate - 100.0 * 13.0 / 15.0).abs() < 1e-6, "{rate}");
        // 4.1 medium (weight 2) and 4.5 high (4) fail; the 13 passing: 3 high, 10 medium.
        let score = scan["score"].as_f64().unwrap();
        assert!((score - 100.0 * 32.0 / 38.0).abs() < 1e-6, "{score}");

        // Suppressing 4.1's violation mutes the control in the next scan.
        let (id,): (String,) = sqlx::query_as(
            "SELECT violation_id::text FROM compliance_violations WHERE control_id = '4.1'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        let until = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
        let (code, _) = post_json(
            &worker,
            &format!("/v1/compliance/violations/{id}/status"),
            &json!({"status": "suppressed", "reason": "pen test this week", "until": until}),
        )
        .await;
        assert_eq!(code, 200);
        let (_, second) = post_json(&worker, "/v1/compliance/scans", &ask).await;
        let second = &second["result"];
        assert_eq!(
            (second["failed"].as_i64(), second["muted"].as_i64()),
            (Some(1), Some(1))
        );
        assert_eq!(second["pass_rate"].as_f64(), Some(100.0 * 13.0 / 14.0));

        // The trend, newest first, and the reports.
        let (_, trend) = http_get(
            &reader,
            "/v1/compliance/scans?tenant_id=acme&framework=cis_aws_3.0",
        )
        .await;
        let trend: Value = serde_json::from_str(&trend).unwrap();
        let ids: Vec<&str> = trend["result"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["requested_by"] != "schedule")
            .map(|s| s["scan_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                second["scan_id"].as_str().unwrap(),
                scan["scan_id"].as_str().unwrap()
            ]
        );
        let path = format!(
            "/v1/compliance/scans/{}",
            second["scan_id"].as_str().unwrap()
        );
        let (code, csv) = http_get(&reader, &format!("{path}?format=csv")).await;
        assert_eq!(code, 200);
        let header = csv.lines().next().unwrap();
        assert!(
            header.starts_with("TIMESTAMP;ACCOUNT_UID;FINDING_UID;PROVIDER;CHECK_ID"),
            "{header}"
        );
        assert_eq!(csv.lines().count(), 16, "a header and a row per control");
        assert!(
            csv.lines()
                .any(|l| l.contains(";4.1;") && l.contains(";MUTED;") && l.contains(";True;")),
            "{csv}"
        );
        let (_, ocsf) = http_get(&reader, &format!("{path}?format=ocsf")).await;
        let ocsf: Value = serde_json::from_str(&ocsf).unwrap();
        assert_eq!(ocsf.as_array().unwrap().len(), 15);
        assert!(ocsf
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["class_uid"] == 2004));
        // And against the OCSF model Prowler writes its own findings with.
        let python =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/.venv/bin/python");
        if crate::common::require(
            "py-ocsf-models",
            python.exists(),
            "needs pipelines/tests/python/.venv with py-ocsf-models (scripts/python-tools installs it)",
        ) {
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), serde_json::to_vec(&ocsf).unwrap()).unwrap();
            let out = std::process::Command::new(&python)
                .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/validate_ocsf.py"))
                .arg(file.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "OCSF does not validate: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let (_, html) = http_get(&reader, &format!("{path}?format=html")).await;
        assert!(
            html.starts_with("<!doctype html>")
                && html.contains("CIS Amazon Web Services Foundations Benchmark v3.0.0")
        );
        let outsider = api.with_token(Some(&env.token(&["read:globex"]).await));
        let (code, _) = http_get(&outsider, &path).await;
        assert_eq!(code, 404, "another tenant's reader does not see it");

        // The schedule scans both frameworks by itself.
        env.expect_count(
            "SELECT count(DISTINCT framework) FROM compliance_scans WHERE requested_by = 'schedule'",
            2,
            WAIT,
        )
        .await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
