//! The web console in a real browser: Debian's Chromium, headless, driven by playwright-core
//! (pipelines/tests/browser/driver.mjs) against a running engine on the real services.

use portcullis::runtime::block_on;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::common;
use crate::common::{TestEnv, ACME_ACCOUNT};
use portcullis::sinks::postgres::add_tenant;
use portcullis_engine::TenantId;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

const GLOBEX_ACCOUNT: &str = "222222222222";
const UNMAPPED_ACCOUNT: &str = "999999999999";

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// One headless Chromium, commanded a line at a time.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Browser {
    /// `None` (the test says it skipped, when allowed) without Chromium or the npm packages.
    fn start() -> Option<Browser> {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let have = std::path::Path::new(&chromium).exists()
            && browser_dir().join("node_modules/playwright-core").is_dir();
        if !common::require(
            "browser",
            have,
            "needs /usr/bin/chromium and pipelines/tests/browser/node_modules (scripts/test installs both)",
        ) {
            return None;
        }
        let mut child = tokio::process::Command::new("node")
            .arg(browser_dir().join("driver.mjs"))
            .env("CHROMIUM", chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Some(Browser {
            child,
            stdin,
            stdout,
        })
    }

    async fn try_do(&mut self, cmd: Value) -> Value {
        let line = format!("{cmd}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(60), self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("the browser did not answer {cmd}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the browser driver exited at {cmd}"));
        serde_json::from_str(&answer).unwrap()
    }

    /// Runs a command that must succeed.
    async fn run(&mut self, cmd: Value) -> Value {
        let answer = self.try_do(cmd.clone()).await;
        assert_eq!(answer["ok"], true, "{cmd} failed: {answer}");
        answer
    }

    async fn sign_in(&mut self, base: &str, token: &str) {
        self.run(json!({"op": "goto", "url": format!("{base}/console/")}))
            .await;
        self.run(json!({"op": "fill", "selector": "#token", "value": token}))
            .await;
        self.run(json!({"op": "click", "selector": "button[type=submit]"}))
            .await;
        self.run(json!({"op": "wait", "selector": "nav a", "text": "Live"}))
            .await;
    }

    /// Signs out, signs in with `token` and opens `page` (a console path such as `#/agents`).
    async fn switch_user(&mut self, base: &str, token: &str, page: &str) {
        self.run(json!({"op": "click", "selector": "header button"}))
            .await;
        self.sign_in(base, token).await;
        self.run(json!({"op": "goto", "url": format!("{base}/console/{page}")}))
            .await;
    }

    async fn texts(&mut self, selector: &str) -> Vec<String> {
        let answer = self.run(json!({"op": "texts", "selector": selector})).await;
        serde_json::from_value(answer["texts"].clone()).unwrap()
    }

    async fn close(self) {
        self.close_expecting(&[]).await
    }

    /// Closes, allowing only page errors that contain one of `expected` (a refused request
    /// the test made on purpose shows as a failed resource load).
    async fn close_expecting(mut self, expected: &[&str]) {
        let answer = self.try_do(json!({"op": "close"})).await;
        let problems = answer["problems"].as_array().cloned().unwrap_or_default();
        let unexpected: Vec<_> = problems
            .iter()
            .filter(|p| {
                !expected
                    .iter()
                    .any(|e| p.as_str().unwrap_or("").contains(e))
            })
            .collect();
        assert!(
            unexpected.is_empty(),
            "the page reported errors: {unexpected:?}"
        );
        let _ = self.child.wait().await;
    }
}

/// A console login without MFA (denied) by `user` of `account`.
fn record(id: &str, account: &str, user: &str) -> Vec<u8> {
    common::cloudtrail_by(id, "ConsoleLogin", Some("No"), account, user)
}

async fn console_env(tag: &str) -> TestEnv {
    let env = TestEnv::new(tag).await;
    add_tenant(
        &env.pool,
        &TenantId::parse("globex").unwrap(),
        Some("Globex"),
        &[GLOBEX_ACCOUNT.into()],
    )
    .await
    .unwrap();
    env
}

#[test]
fn an_admin_signs_in_sees_decisions_live_and_drills_down() {
    block_on(async {
        let Some(mut browser) = Browser::start() else {
            return;
        };
        let env = console_env("console_live").await;
        let engine = env.start().await;
        let base = format!("http://{}", engine.http_addr());

        // A wrong token is refused with the engine's reason.
        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/")}))
            .await;
        browser
            .run(json!({"op": "fill", "selector": "#token", "value": "pcl_nope"}))
            .await;
        browser
            .run(json!({"op": "click", "selector": "button[type=submit]"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[role=alert]", "text": "malformed"}))
            .await;

        browser.sign_in(&base, &env.admin_token).await;
        browser
            .run(json!({"op": "wait", "selector": ".status", "text": "live"}))
            .await;
        let principal = format!("live-{}", env.suffix);
        env.produce(&[(
            ACME_ACCOUNT,
            record("console-live-1", ACME_ACCOUNT, &principal),
        )])
        .await;
        browser
            .run(json!({"op": "wait", "selector": "table tbody tr", "text": principal, "timeout": 30000}))
            .await;

        // Recent decisions, and one in full: reasons, rule result, raw record.
        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/#/decisions")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "table tbody tr", "text": principal}))
            .await;
        browser
            .run(json!({"op": "click", "selector": "table tbody tr a"}))
            .await;
        browser.run(json!({"op": "wait", "selector": "pre[aria-label='Raw record']", "text": "console-live-1"})).await;
        let fields = browser.texts("dl.fields dd").await.join(" | ");
        assert!(fields.contains("MFA"), "no reasons shown: {fields}");

        // Tenants and bundle health.
        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/#/tenants")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "tr[data-tenant=acme]", "text": "healthy"}))
            .await;
        browser.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn a_tenant_token_sees_none_of_another_tenants_decisions_in_the_console() {
    block_on(async {
        let Some(mut browser) = Browser::start() else {
            return;
        };
        let env = console_env("console_tenant").await;
        let engine = env.start().await;
        let base = format!("http://{}", engine.http_addr());
        let token = env.token(&["read:acme"]).await;

        browser.sign_in(&base, &token).await;
        assert_eq!(browser.texts("#live-tenant option").await, ["acme"]);
        browser
            .run(json!({"op": "wait", "selector": ".status", "text": "live"}))
            .await;
        let (theirs, mine) = (
            format!("globex-{}", env.suffix),
            format!("acme-{}", env.suffix),
        );
        env.produce(&[
            (
                GLOBEX_ACCOUNT,
                record("console-g-1", GLOBEX_ACCOUNT, &theirs),
            ),
            (ACME_ACCOUNT, record("console-a-1", ACME_ACCOUNT, &mine)),
        ])
        .await;
        env.wait_at_least(
            "SELECT count(*) FROM decisions WHERE tenant_id = 'globex'",
            1,
            Duration::from_secs(30),
        )
        .await;
        browser
            .run(
                json!({"op": "wait", "selector": "table tbody tr", "text": mine, "timeout": 30000}),
            )
            .await;
        let live = browser.texts("table tbody tr").await.join("\n");
        assert!(
            !live.contains(&theirs) && !live.contains("globex"),
            "{live}"
        );

        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/#/decisions")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "table tbody tr", "text": mine}))
            .await;
        let listed = browser.texts("table tbody tr").await.join("\n");
        assert!(
            !listed.contains(&theirs) && !listed.contains("globex"),
            "{listed}"
        );
        let options = browser.texts("#d-tenant option").await;
        assert_eq!(options, ["all tenants", "acme"]);

        browser.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn an_admin_replays_a_dead_letter_from_the_console() {
    block_on(async {
        let Some(mut browser) = Browser::start() else {
            return;
        };
        let env = console_env("console_replay").await;
        let engine = env.start().await;
        let base = format!("http://{}", engine.http_addr());
        env.produce(&[(
            UNMAPPED_ACCOUNT,
            record("console-u-1", UNMAPPED_ACCOUNT, "ursula"),
        )])
        .await;
        env.wait_at_least(
            "SELECT count(*) FROM dead_letters",
            1,
            Duration::from_secs(30),
        )
        .await;
        let id: String = sqlx::query_scalar("SELECT dead_letter_id FROM dead_letters")
            .fetch_one(&env.pool)
            .await
            .unwrap();

        // A tenant token sees no tenantless dead letter and no replay button.
        browser
            .sign_in(&base, &env.token(&["admin:acme"]).await)
            .await;
        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/#/dead-letters")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[role=status]", "text": "No open dead letters"}))
            .await;
        browser
            .run(json!({"op": "click", "selector": "header button"}))
            .await; // sign out

        // The cause fixed, the admin replays it and it leaves the open list.
        env.map_account("acme", UNMAPPED_ACCOUNT).await;
        browser.sign_in(&base, &env.admin_token).await;
        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/#/dead-letters")}))
            .await;
        let row = format!("tr[data-dead-letter-id='{id}']");
        browser
            .run(json!({"op": "wait", "selector": row, "text": "not mapped"}))
            .await;
        browser
            .run(json!({"op": "click", "selector": format!("{row} button")}))
            .await;
        browser.run(json!({"op": "gone", "selector": row})).await;
        browser
            .run(json!({"op": "wait", "selector": "[role=status]", "text": "1 events stored"}))
            .await;
        assert_eq!(
            env.count("SELECT count(*) FROM dead_letters WHERE resolved_at IS NOT NULL")
                .await,
            1
        );
        assert_eq!(
            env.count("SELECT count(*) FROM events WHERE event_id = 'console-u-1'")
                .await,
            1
        );

        browser.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn a_page_that_falls_behind_the_stream_says_so() {
    block_on(async {
        let Some(mut browser) = Browser::start() else {
            return;
        };
        let env = console_env("console_lag").await;
        let mut config = env.config.clone();
        // A tiny buffer per subscription, so a burst outruns the page's WebSocket.
        config.http.stream_buffer = 2;
        let engine = env.start_with(config).await;
        let base = format!("http://{}", engine.http_addr());
        browser.sign_in(&base, &env.admin_token).await;
        browser
            .run(json!({"op": "wait", "selector": ".status", "text": "live"}))
            .await;

        let api = env.api(engine.http_addr());
        let input = json!({"input": {"subject": {"tenant_id": "acme", "user_id": "alice"},
            "action": "read", "resource": {"type": "sensor_data", "region": "EU"}}});
        let mut lagged = false;
        for _ in 0..20 {
            let burst =
                (0..100).map(|_| common::post_json(&api, "/v1/data/tenants/acme/allow", &input));
            for (status, body) in futures::future::join_all(burst).await {
                // A tenant's queue may refuse part of a burst (backpressure, not a failure
                // of this page); anything else is.
                assert!(
                    status == 200 || (status == 503 && body["code"] == "tenant_throttled"),
                    "{status}: {body}"
                );
            }
            let seen = browser
                .try_do(json!({"op": "wait", "selector": ".notice", "text": "skipped", "timeout": 1000}))
                .await;
            if seen["ok"] == true {
                lagged = true;
                break;
            }
        }
        assert!(
            lagged,
            "no lag notice after 2,000 decisions through a 2-decision buffer"
        );
        let notice = browser.texts(".notice").await.join(" ");
        assert!(notice.contains("Recent decisions"), "{notice}");
        browser.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn an_admin_publishes_segment_policy_from_the_console_and_a_reader_cannot() {
    block_on(async {
        let Some(mut browser) = Browser::start() else {
            return;
        };
        let env = console_env("console_segments").await;
        let engine = env.start().await;
        let base = format!("http://{}", engine.http_addr());
        browser.sign_in(&base, &env.admin_token).await;
        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/#/segments/acme/hr")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "h1", "text": "Segment acme/hr"}))
            .await;
        // Broken Rego is refused with the compiler's word, and nothing is published.
        browser
            .run(json!({"op": "fill", "selector": "#pub-source", "value": "package segments.hr\nallow if {"}))
            .await;
        browser
            .run(json!({"op": "click", "selector": "form.publish button[type=submit]"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[role=alert]", "text": "Not published"}))
            .await;
        browser
            .run(json!({"op": "fill", "selector": "#pub-source",
                        "value": "package segments.hr\ndefault allow := false\nallow if input.action == \"read\""}))
            .await;
        browser
            .run(json!({"op": "fill", "selector": "#pub-data", "value": "{\"owners\": [\"hr-it\"]}"}))
            .await;
        browser
            .run(json!({"op": "click", "selector": "form.publish button[type=submit]"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[role=status]", "text": "Published version 1"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "tr[data-version='1']", "text": "token:test-admin"}))
            .await;
        assert_eq!(
            env.expect_count(
                "SELECT count(*) FROM segment_versions WHERE sent_at IS NOT NULL",
                1,
                Duration::from_secs(10)
            )
            .await,
            1,
            "published once and sent"
        );
        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/#/segments")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "tr[data-segment='acme/hr']", "text": "hr"}))
            .await;
        let row = browser.texts("tr[data-segment='acme/hr'] td").await;
        assert_eq!(row[2], "1", "latest version: {row:?}");
        assert!(row[3].ends_with('Z'), "sent, with its time: {row:?}");

        // A reader sees the history and no publish form.
        let reader = env.token(&["read:acme"]).await;
        browser
            .switch_user(&base, &reader, "#/segments/acme/hr")
            .await;
        browser
            .run(json!({"op": "wait", "selector": "tr[data-version='1']", "text": "1"}))
            .await;
        // The version's detail shows after the point where an admin's form would be added.
        browser
            .run(json!({"op": "wait", "selector": "h2", "text": "Version 1"}))
            .await;
        let forms = browser
            .run(json!({"op": "count", "selector": "form.publish"}))
            .await;
        assert_eq!(forms["count"], 0);
        // The broken policy's refusal, on purpose.
        browser
            .close_expecting(&["status of 400 (Bad Request)"])
            .await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn the_agents_page_shows_each_agents_state_identity_and_drift() {
    block_on(async {
        let Some(mut browser) = Browser::start() else {
            return;
        };
        let env = console_env("console_agents").await;
        let engine = env.start().await;
        let base = format!("http://{}", engine.http_addr());
        let api = env.api(engine.http_addr());
        let rule = json!({"tenant_id": "acme", "group": "HR", "segment_id": "hr"});
        assert_eq!(
            common::post_json(&api, "/v1/segment-rules", &rule).await.0,
            201
        );
        for step in 1..=2 {
            let body = json!({"modules": {"hr.rego": "package segments.hr\ndefault allow := false\n"},
                              "data": {"step": step}});
            let (status, answer) =
                common::post_json(&api, "/v1/segments/acme/hr/versions", &body).await;
            assert_eq!(status, 201, "{answer}");
        }
        // Two agents speak the protocol: one applies v1 and stays, one applies v2 and leaves.
        let p = &env.config.mqtt.topic_prefix;
        let say = |agent: &str, kind: &str, body: Value| {
            (
                format!("{p}/acme/agents/{agent}/{kind}"),
                body.to_string().into_bytes(),
            )
        };
        portcullis::sources::mqtt::publish_all(
            &env.config.mqtt,
            &format!("pc-test-agents-{}", env.suffix),
            vec![
                say(
                    "laptop-1",
                    "hello",
                    json!({"protocol": 1, "groups": ["HR"]}),
                ),
                say(
                    "laptop-1",
                    "status",
                    json!({"protocol": 1, "online": true, "applied": {"hr": 1}}),
                ),
                say(
                    "laptop-2",
                    "hello",
                    json!({"protocol": 1, "groups": ["HR"]}),
                ),
                say(
                    "laptop-2",
                    "status",
                    json!({"protocol": 1, "online": true, "applied": {"hr": 2}}),
                ),
                say(
                    "laptop-2",
                    "status",
                    json!({"protocol": 1, "online": false}),
                ),
            ],
        )
        .await
        .unwrap();
        env.expect_count(
            "SELECT count(*) FROM agent_segments",
            2,
            Duration::from_secs(10),
        )
        .await;

        browser.sign_in(&base, &env.admin_token).await;
        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/#/agents")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "tr[data-agent='acme/laptop-2']", "text": "offline"}))
            .await;
        let behind = browser.texts("tr[data-agent='acme/laptop-1'] td").await;
        assert_eq!(
            &behind[..5],
            ["acme", "laptop-1", "online", "self-declared", "HR"]
        );
        assert_eq!(behind[5], "hr v1 (latest v2)", "{behind:?}");
        let current = browser.texts("tr[data-agent='acme/laptop-2'] td").await;
        assert_eq!(current[5], "hr v2", "{current:?}");
        // Only those behind.
        browser
            .run(json!({"op": "click", "selector": "#ag-behind"}))
            .await;
        browser
            .run(json!({"op": "gone", "selector": "tr[data-agent='acme/laptop-2']"}))
            .await;
        // (the table is emptied, then refilled when the answer comes)
        browser
            .run(json!({"op": "wait", "selector": "tr[data-agent='acme/laptop-1']", "text": "laptop-1"}))
            .await;
        let rows = browser
            .run(json!({"op": "count", "selector": "tbody tr"}))
            .await;
        assert_eq!(rows["count"], 1);
        browser.close_expecting(&[]).await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn the_anomalies_page_trains_a_model_and_shows_what_it_finds() {
    block_on(async {
        let Some(mut browser) = Browser::start() else {
            return;
        };
        let env = console_env("console_anomalies").await;
        let engine = env.start().await;
        let base = format!("http://{}", engine.http_addr());
        let api = env.api(engine.http_addr());
        browser.sign_in(&base, &env.admin_token).await;
        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/#/anomalies")}))
            .await;
        let line = "tr[data-line='acme/cloudtrail']";
        browser
            .run(json!({"op": "wait", "selector": line, "text": "no model"}))
            .await;
        // Training mode: start, watch the events come in, stop to train.
        browser
            .run(json!({"op": "click", "selector": format!("{line} button")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[role=status]", "text": "collecting events"}))
            .await;
        let batch: Vec<(&str, Vec<u8>)> = (0..60)
            .map(|i| {
                (
                    ACME_ACCOUNT,
                    serde_json::to_vec(&common::usual_cloudtrail(i)).unwrap(),
                )
            })
            .collect();
        env.produce(&batch).await;
        browser
            .run(json!({"op": "wait", "selector": line, "text": "60 events collected"}))
            .await;
        browser
            .run(json!({"op": "click", "selector": format!("{line} button.primary")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[role=status]",
                        "text": "Trained acme/cloudtrail model version 1 on 60 events"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "tr[data-model='acme/cloudtrail/1']", "text": "60"}))
            .await;
        // Live mode: a low threshold, then odd records until one is an anomaly.
        let (status, text) = common::request(
            &api,
            "PUT",
            "/v1/anomaly/acme/cloudtrail/settings",
            &[],
            br#"{"threshold": 0.55}"#,
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut round = 0;
        let odd_id = loop {
            round += 1;
            let id = format!("odd-{round}");
            env.produce(&[(
                ACME_ACCOUNT,
                serde_json::to_vec(&common::odd_cloudtrail(&id)).unwrap(),
            )])
            .await;
            env.expect_count(
                &format!("SELECT count(*) FROM decisions WHERE event_id = '{id}'"),
                1,
                Duration::from_secs(30),
            )
            .await;
            let found = env
                .count(&format!(
                    "SELECT count(*) FROM anomalies WHERE event_id = '{id}'"
                ))
                .await;
            if found == 1 {
                break id;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no anomaly by round {round}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let anomaly = format!("tr[data-anomaly='{odd_id}']");
        browser
            .run(json!({"op": "wait", "selector": anomaly, "text": "DeleteTrail"}))
            .await;
        let row = browser.texts(&format!("{anomaly} td")).await;
        assert!(row[5].contains(" = "), "what was unusual, named: {row:?}");
        assert_eq!(row[7], "deny", "{row:?}");
        let principal = format!("arn:aws:iam::{ACME_ACCOUNT}:user/alice");
        let trust_row = format!("tr[data-subject='principal/{principal}']");
        browser
            .run(json!({"op": "wait", "selector": trust_row, "text": "alice"}))
            .await;
        let row = browser.texts(&format!("{trust_row} td")).await;
        let trust: u8 = row[3].parse().unwrap();
        assert!(trust < 100, "{row:?}");
        assert!(
            ["watch", "low", "untrusted"].contains(&row[4].as_str()),
            "{row:?}"
        );
        browser
            .run(json!({"op": "wait", "selector": line, "text": "scoring"}))
            .await;

        // A reader of acme sees the same and no training buttons; globex's line is not shown.
        let reader = env.token(&["read:acme"]).await;
        browser.switch_user(&base, &reader, "#/anomalies").await;
        browser
            .run(json!({"op": "wait", "selector": anomaly, "text": "DeleteTrail"}))
            .await;
        let buttons = browser
            .run(json!({"op": "count", "selector": format!("{line} button")}))
            .await;
        assert_eq!(buttons["count"], 0);
        let globex = browser
            .run(json!({"op": "count", "selector": "tr[data-line^='globex/']"}))
            .await;
        assert_eq!(globex["count"], 0);
        browser.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn the_evidence_page_answers_approvals_and_checks_receipts() {
    block_on(async {
        let Some(mut browser) = Browser::start() else {
            return;
        };
        let mut env = console_env("console_evidence").await;
        env.config.kafka.enabled = false;
        env.config.evidence.checkpoint_interval_ms = 200;
        env.config.protection.tick_ms = 200;
        env.config.protection.refresh_ms = 200;
        env.config.protection.sample_secs = 1;
        let engine = env.start().await;
        let base = format!("http://{}", engine.http_addr());
        let asker = env
            .api(engine.http_addr())
            .with_token(Some(&env.token(&["query:acme"]).await));
        let ask = json!({"input": {"principal": "carol", "groups": [], "action": "GET",
            "request": {"method": "GET", "path": "/admin/users", "host": "wiki"}}});
        let (status, body) =
            common::post_json(&asker, "/v1/data/tenants/acme/gateway/allow", &ask).await;
        assert_eq!(status, 200, "{body}");
        let approval = body["approval"]["id"].as_str().unwrap().to_owned();
        let asked = body["decision_id"].as_str().unwrap().to_owned();
        let row = format!("tr[data-approval='{approval}']");

        // A reader sees the request but cannot answer it.
        let reader = env.token(&["read:acme"]).await;
        browser.sign_in(&base, &reader).await;
        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/#/evidence")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": row, "text": "pending"}))
            .await;
        let buttons = browser
            .run(json!({"op": "count", "selector": format!("{row} button")}))
            .await;
        assert_eq!(buttons["count"], 0);

        // An approver approves it with a note; the requester's next ask passes.
        let approver = env.token_named("dana", &["approve:acme"]).await;
        browser.switch_user(&base, &approver, "#/evidence").await;
        browser
            .run(json!({"op": "wait", "selector": row, "text": "carol"}))
            .await;
        browser
            .run(json!({"op": "fill", "selector": "#ap-note", "value": "ticket CHG-7"}))
            .await;
        browser
            .run(json!({"op": "click", "selector": format!("{row} button.primary")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[role=status]", "text": "Approved: carol"}))
            .await;
        browser
            .run(json!({"op": "select", "selector": "#ap-status", "value": "approved"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": row, "text": "dana: ticket CHG-7"}))
            .await;
        let (_, body) =
            common::post_json(&asker, "/v1/data/tenants/acme/gateway/allow", &ask).await;
        assert_eq!(body["approval"]["status"], "approved", "{body}");

        // The asking decision's receipt, once sealed, verifies on the page and in the browser.
        env.wait_at_least(
            "SELECT coalesce(max(size), 0) FROM receipt_checkpoints WHERE tenant_id = 'acme'",
            3,
            Duration::from_secs(30),
        )
        .await;
        browser
            .switch_user(&base, &env.admin_token, "#/evidence")
            .await;
        browser
            .run(json!({"op": "select", "selector": "#rc-tenant", "value": "acme"}))
            .await;
        browser
            .run(json!({"op": "fill", "selector": "#rc-decision", "value": asked}))
            .await;
        browser
            .run(json!({"op": "click", "selector": "#rc-decision ~ button, form:has(#rc-decision) button"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "#rc-status", "text": "verified"}))
            .await;
        browser
            .run(
                json!({"op": "wait", "selector": "#rc-browser", "text": "leads from this receipt"}),
            )
            .await;
        let fields = browser.texts("dl.fields dd").await;
        assert!(
            fields.contains(&"require_approval".to_owned()),
            "{fields:?}"
        );
        assert!(fields.contains(&"carol".to_owned()), "{fields:?}");
        browser
            .run(json!({"op": "wait", "selector": "tr[data-checkpoint^='acme/']"}))
            .await;
        // A decision with no receipt is said to be missing.
        browser
            .run(json!({"op": "fill", "selector": "#rc-decision", "value": uuid::Uuid::nil().to_string()}))
            .await;
        browser
            .run(json!({"op": "click", "selector": "form:has(#rc-decision) button"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[role=alert]"}))
            .await;

        // Protection: a unit over acme's gateway rule, overloaded: its change to read-only is
        // listed and its ρ drawn over time (the level itself relaxes within a second).
        let admin = env.api(engine.http_addr());
        let (status, text) = common::request(
            &admin,
            "PUT",
            "/v1/protection/acme/gateway",
            &[],
            br#"{"selector": "api:data.tenants.acme.gateway.*", "capacity_per_sec": 5}"#,
        )
        .await;
        assert_eq!(status, 200, "{text}");
        for _ in 0..60 {
            common::post_json(&asker, "/v1/data/tenants/acme/gateway/allow", &ask).await;
        }
        let unit = "tr[data-unit='acme/gateway']";
        browser
            .run(json!({"op": "wait", "selector": unit, "text": "api:data.tenants.acme.gateway.*"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": format!("{unit} svg polyline")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "table[aria-label='Protection changes'] td", "text": "permissive → read_only"}))
            .await;

        // A critical signal about the unit: listed, and the unit shown as held by it.
        let signal = json!({"tenant_id": "acme", "subject_kind": "unit", "subject": "gateway",
            "kind": "credential_stuffing", "severity": "critical", "source": "waf", "ttl_secs": 600});
        let (status, body) = common::post_json(&admin, "/v1/signals", &signal).await;
        assert_eq!(status, 200, "{body}");
        browser
            .run(json!({"op": "wait", "selector": "table[aria-label='Trust signals'] tr", "text": "unit: gateway"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": format!("{unit} [data-held='read_only']"), "text": "waf: credential_stuffing (critical)"}))
            .await;
        browser.close_expecting(&["404"]).await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

/// A StopLogging of trail `trail` in `account`, by alice.
fn stop_logging(id: &str, account: &str, trail: &str) -> Vec<u8> {
    let mut rec = common::cloudtrail(id, "StopLogging", None);
    rec["eventSource"] = json!("cloudtrail.amazonaws.com");
    rec["requestParameters"] = json!({"name": trail});
    rec["recipientAccountId"] = json!(account);
    rec["userIdentity"]["accountId"] = json!(account);
    serde_json::to_vec(&rec).unwrap()
}

#[test]
fn the_compliance_page_works_violations_through_their_lifecycle() {
    block_on(async {
        let Some(mut browser) = Browser::start() else {
            return;
        };
        let env = console_env("console_compliance").await;
        let engine = env.start().await;
        let base = format!("http://{}", engine.http_addr());
        env.produce(&[
            (ACME_ACCOUNT, stop_logging("cc-1", ACME_ACCOUNT, "main")),
            (ACME_ACCOUNT, stop_logging("cc-2", ACME_ACCOUNT, "audit")),
            (
                GLOBEX_ACCOUNT,
                stop_logging("cc-g", GLOBEX_ACCOUNT, "globex-secret-trail"),
            ),
        ])
        .await;
        // Per trail: CIS 4.5 and the detection.
        env.expect_count(
            "SELECT count(*) FROM compliance_violations",
            6,
            Duration::from_secs(30),
        )
        .await;
        let id = |trail: &'static str| {
            let pool = env.pool.clone();
            async move {
                let (id,): (String,) = sqlx::query_as(
                    "SELECT violation_id::text FROM compliance_violations
                     WHERE control_id = 'cloudtrail_logging_stopped' AND resource_id = $1",
                )
                .bind(trail)
                .fetch_one(&pool)
                .await
                .unwrap();
                format!("tr[data-violation='{id}']")
            }
        };
        let (main, audit) = (id("main").await, id("audit").await);

        // acme's reader sees acme's violations, not globex's, and cannot change them.
        let reader = env.token(&["read:acme"]).await;
        browser.sign_in(&base, &reader).await;
        browser
            .run(json!({"op": "goto", "url": format!("{base}/console/#/compliance")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": &main, "text": "A trail's logging stopped"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[data-severity='critical']", "text": "2 critical"}))
            .await;
        let rows = browser
            .texts("table[aria-label='Violations'] tbody tr")
            .await;
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert!(
            rows.iter().all(|r| !r.contains("globex-secret-trail")),
            "{rows:?}"
        );
        let buttons = browser
            .run(json!({"op": "count", "selector": format!("{main} button[data-action]")}))
            .await;
        assert_eq!(buttons["count"], 0);
        // Its evidence: the event that raised it.
        browser
            .run(json!({"op": "click", "selector": format!("{main} button")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "#cv-detail tr[data-evidence='cc-1']", "text": "succeeded"}))
            .await;

        // A worker acknowledges one and suppresses the other, with a reason and an end.
        let worker = env.token_named("erin", &["comply:acme", "read:acme"]).await;
        browser.switch_user(&base, &worker, "#/compliance").await;
        browser.run(json!({"op": "wait", "selector": &main})).await;
        browser
            .run(json!({"op": "fill", "selector": "#cv-reason", "value": "SEC-41"}))
            .await;
        browser
            .run(json!({"op": "click", "selector": format!("{main} button[data-action='acknowledged']")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": &main, "text": "acknowledged"}))
            .await;
        // Its control remediates by itself: the command went out as a dry run (the default),
        // so the worker asks again once the executor has answered.
        let (action,): (String,) = sqlx::query_as(
            "SELECT a.remediation_id::text FROM remediation_actions a
             JOIN compliance_violations v USING (violation_id)
             WHERE v.control_id = 'cloudtrail_logging_stopped' AND v.resource_id = 'main'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        env.expect_count(
            &format!(
                "SELECT count(*) FROM remediation_actions
                 WHERE remediation_id = '{action}' AND status = 'sent' AND dry_run"
            ),
            1,
            Duration::from_secs(30),
        )
        .await;
        env.report_remediation_results(&[json!({"remediation_id": action, "status": "succeeded",
            "dry_run": true, "executor": "lambda-7", "detail": "would start main"})])
            .await;
        env.expect_count(
            "SELECT count(*) FROM remediation_actions WHERE status = 'succeeded'",
            1,
            Duration::from_secs(30),
        )
        .await;
        browser
            .run(json!({"op": "click", "selector": format!("{main} button")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": format!("#cv-detail tr[data-remediation='{action}']"), "text": "would start main"}))
            .await;
        browser
            .run(json!({"op": "click", "selector": "#cv-remediate"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[role=status]", "text": "cloudtrail.start_logging asked for main"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "table[aria-label='Remediation actions'] tbody", "text": "erin"}))
            .await;
        let waiting = browser
            .run(json!({"op": "count", "selector": "#cv-remediate"}))
            .await;
        assert_eq!(waiting["count"], 0, "no second request while one waits");
        // Suppressing without an end is refused on the page.
        browser
            .run(json!({"op": "click", "selector": format!("{audit} button[data-action='suppressed']")}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[role=alert]", "text": "give a reason and the date it ends"}))
            .await;
        let until = (chrono::Utc::now() + chrono::Duration::days(30))
            .format("%Y-%m-%d")
            .to_string();
        browser
            .run(json!({"op": "fill", "selector": "#cv-reason", "value": "audit trail retired"}))
            .await;
        browser
            .run(json!({"op": "fill", "selector": "#cv-until", "value": until}))
            .await;
        browser
            .run(json!({"op": "click", "selector": format!("{audit} button[data-action='suppressed']")}))
            .await;
        // Suppressed ones leave the active list; all of them show it.
        browser
            .run(json!({"op": "select", "selector": "#cv-status", "value": ""}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": &audit, "text": "audit trail retired"}))
            .await;
        let (status, by): (String, String) = sqlx::query_as(
            "SELECT status, changed_by FROM compliance_violations
             WHERE control_id = 'cloudtrail_logging_stopped' AND resource_id = 'audit'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!((status.as_str(), by.as_str()), ("suppressed", "erin"));

        // A scan from the page: its scores, the failing controls, and its reports.
        browser
            .run(json!({"op": "wait", "selector": "#cs-framework", "text": "CIS Amazon Web Services"}))
            .await;
        browser
            .run(json!({"op": "select", "selector": "#cs-framework", "value": "cis_aws_3.0"}))
            .await;
        browser
            .run(json!({"op": "click", "selector": "#cs-run"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "[role=status]", "text": "Scanned: pass rate 93.3 %"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "tr[data-failing='cis_aws_monitoring/4.5']", "text": "CloudTrail configuration changes"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "table[aria-label='Scans'] tr[data-scan] button[data-format='html']"}))
            .await;
        browser
            .run(json!({"op": "wait", "selector": "#cs-trend svg[aria-label*='over the last 1 scans']"}))
            .await;
        let line = browser
            .run(json!({"op": "count", "selector": "#cs-trend svg polyline"}))
            .await;
        assert_eq!(line["count"], 1, "the score drawn");
        browser.close().await;
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
