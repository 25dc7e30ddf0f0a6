//! The approval queue against the running engine and Postgres: a rule's `require_approval`
//! opens a request (reused while it waits), approvers answer it through the API or the CLI,
//! the requester learns the answer by waiting on it or on the decision stream, an approved
//! request passes, an unanswered one expires; every answer has its receipt.

use std::time::{Duration, Instant};

use portcullis::runtime::block_on;
use serde_json::{json, Value};

use crate::common;
use crate::common::{http_get, next_json, post_json, request, ws_connect, TestEnv};

const RULE: &str = "/v1/data/tenants/acme/gateway/allow";

fn admin_page(who: &str, path: &str) -> Value {
    json!({"input": {
        "principal": who, "groups": ["ops"], "action": "GET",
        "request": {"method": "GET", "path": path, "host": "wiki.acme.example"}
    }})
}

/// The receipts of `tenant` of kind `kind`, oldest first, parsed.
async fn receipts(env: &TestEnv, kind: &str) -> Vec<Value> {
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM receipts WHERE tenant_id = 'acme' AND kind = $1 ORDER BY leaf_index",
    )
    .bind(kind)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    bodies
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect()
}

#[test]
fn a_request_waits_for_an_approver_then_passes_and_every_answer_has_a_receipt() {
    block_on(async {
        let mut env = TestEnv::new("approvals").await;
        env.config.kafka.enabled = false;
        let engine = env.start().await;
        let admin = env.api(engine.http_addr());
        let asker = admin.with_token(Some(&env.token(&["query:acme"]).await));
        let approver_token = env.token_named("alice-approver", &["approve:acme"]).await;
        let approver = admin.with_token(Some(&approver_token));
        let outsider = admin.with_token(Some(&env.token(&["approve:globex", "read:globex"]).await));

        // The rule asks for approval: the answer says so and names the request.
        let (status, body) = post_json(&asker, RULE, &admin_page("carol", "/admin/users")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["require_approval"], true, "{body}");
        let approval = &body["approval"];
        assert_eq!(approval["status"], "pending", "{body}");
        let id = approval["id"].as_str().unwrap().to_owned();
        let asking_decision = body["decision_id"].as_str().unwrap().to_owned();
        assert_eq!(approval["href"], format!("/v1/approvals/{id}"));
        // Asking again reuses the waiting request; another page is another request.
        let (_, again) = post_json(&asker, RULE, &admin_page("carol", "/admin/users")).await;
        assert_eq!(again["approval"]["id"], id.as_str());
        let (_, other) = post_json(&asker, RULE, &admin_page("carol", "/admin/groups")).await;
        let other_id = other["approval"]["id"].as_str().unwrap().to_owned();
        assert_ne!(other_id, id);

        // The queue: approvers see acme's pending requests; another tenant's approver sees
        // none and may not answer (told it does not exist).
        let (status, text) =
            http_get(&approver, "/v1/approvals?tenant_id=acme&status=pending").await;
        assert_eq!(status, 200, "{text}");
        let listed: Value = serde_json::from_str(&text).unwrap();
        let ids: Vec<&str> = listed["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["approval_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [other_id.as_str(), id.as_str()], "newest first");
        assert_eq!(listed["result"][1]["principal"], "carol");
        let resource = listed["result"][1]["resource"].as_str().unwrap();
        assert!(resource.starts_with("input sha256:"), "{resource}");
        let (_, text) = http_get(&outsider, "/v1/approvals").await;
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap()["result"],
            json!([])
        );
        let (status, _) = http_get(&outsider, "/v1/approvals?tenant_id=acme").await;
        assert_eq!(status, 403);
        let approve = format!("/v1/approvals/{id}/approve");
        let (status, _) = request(&outsider, "POST", &approve, &[], b"").await;
        assert_eq!(
            status, 404,
            "another tenant's approver is not told it exists"
        );
        let (status, _) = request(&asker, "POST", &approve, &[], b"").await;
        assert_eq!(status, 404, "a query token cannot answer requests");

        // The requester waits on its request (and on the decision stream) while an approver
        // approves it.
        let mut ws = ws_connect(&admin, "?tenant_id=acme", &[]).await.unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "connected");
        let waiting = {
            let asker = asker.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let got = http_get(&asker, &format!("/v1/approvals/{id}?wait=30")).await;
                (got, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (status, text) = request(
            &approver,
            "POST",
            &approve,
            &[],
            br#"{"note": "change ticket CHG-42"}"#,
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let ((status, text), waited) = waiting.await.unwrap();
        assert_eq!(status, 200);
        let seen: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(seen["result"]["status"], "approved", "{seen}");
        assert_eq!(seen["result"]["answered_by"], "alice-approver");
        assert!(
            waited < Duration::from_secs(10),
            "woken by the answer, not the timeout"
        );
        let streamed = loop {
            let m = next_json(&mut ws).await;
            if m["type"] == "approval" {
                break m;
            }
        };
        assert_eq!(streamed["data"]["approval_id"], id.as_str());
        assert_eq!(streamed["data"]["status"], "approved");
        // Answered once only.
        let (status, text) = request(&approver, "POST", &approve, &[], b"").await;
        assert_eq!(status, 409, "{text}");
        assert!(text.contains("approval_answered"), "{text}");

        // The same request now passes, naming the approval; the other is still pending.
        let (_, body) = post_json(&asker, RULE, &admin_page("carol", "/admin/users")).await;
        assert_eq!(body["approval"]["status"], "approved", "{body}");
        assert_eq!(body["approval"]["answered_by"], "alice-approver");
        let granted_decision = body["decision_id"].as_str().unwrap().to_owned();
        let (_, body) = post_json(&asker, RULE, &admin_page("dave", "/admin/users")).await;
        assert_eq!(
            body["approval"]["status"], "pending",
            "another principal asks anew"
        );

        // Denied through the API, with a bad body refused first.
        let deny = format!("/v1/approvals/{other_id}/deny");
        let (status, _) = request(&approver, "POST", &deny, &[], b"{\"why\": 1}").await;
        assert_eq!(status, 400);
        let (status, _) = request(&approver, "POST", &deny, &[], b"").await;
        assert_eq!(status, 200);

        // Receipts: the asking decision says require_approval, the approval says who approved
        // what and why, the decision it let through says allow and names it.
        let asked = common::receipt_of(&env, &asking_decision).await;
        assert_eq!(asked["outcome"], "require_approval");
        assert_eq!(asked["principal"], "carol");
        let granted = common::receipt_of(&env, &granted_decision).await;
        assert_eq!(granted["outcome"], "allow");
        assert!(granted["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("approved in approval {id}"))));
        let answers = receipts(&env, "approval").await;
        assert_eq!(answers.len(), 2, "{answers:?}");
        assert_eq!(answers[0]["subject"], id.as_str());
        assert_eq!(answers[0]["principal"], "alice-approver");
        assert_eq!(answers[0]["action"], "approve");
        assert_eq!(answers[0]["outcome"], "allow");
        assert_eq!(answers[0]["reasons"], json!(["change ticket CHG-42"]));
        assert_eq!(answers[1]["subject"], other_id.as_str());
        assert_eq!(answers[1]["outcome"], "deny");
        // The decision log links each decision to its request.
        let linked = env
            .count(&format!(
                "SELECT count(*) FROM api_decisions WHERE approval_id = '{id}'"
            ))
            .await;
        assert_eq!(linked, 3, "asked twice, let through once");

        // The CLI answers too, and says who.
        let (_, body) = post_json(&asker, RULE, &admin_page("erin", "/admin/x")).await;
        let cli_id = body["approval"]["id"].as_str().unwrap().to_owned();
        let (code, out, err) = env.cli(&["approval", "list", "--tenant", "acme"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&cli_id) && out.contains("erin"), "{out}");
        let (code, out, err) = env.cli(&[
            "approval",
            "deny",
            &cli_id,
            "--note",
            "not today",
            "--as",
            "bob",
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("denied by bob"), "{out}");
        let (code, _, err) = env.cli(&["approval", "approve", &cli_id]);
        assert_ne!(code, 0);
        assert!(err.contains("already answered"), "{err}");

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn an_unanswered_request_expires_as_a_denial_with_a_receipt() {
    block_on(async {
        let mut env = TestEnv::new("approval_expiry").await;
        env.config.kafka.enabled = false;
        env.config.approvals.pending_secs = 1;
        env.config.approvals.sweep_interval_ms = 200;
        let engine = env.start().await;
        let asker = env
            .api(engine.http_addr())
            .with_token(Some(&env.token(&["query:acme"]).await));
        let (_, body) = post_json(&asker, RULE, &admin_page("carol", "/admin/users")).await;
        let id = body["approval"]["id"].as_str().unwrap().to_owned();
        let (status, text) = http_get(&asker, &format!("/v1/approvals/{id}?wait=20")).await;
        assert_eq!(status, 200);
        let seen: Value = serde_json::from_str(&text).unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        let mut status = seen["result"]["status"].as_str().unwrap().to_owned();
        while status != "expired" {
            assert!(Instant::now() < until, "still {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (_, text) = http_get(&asker, &format!("/v1/approvals/{id}")).await;
            status = serde_json::from_str::<Value>(&text).unwrap()["result"]["status"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        let answers = receipts(&env, "approval").await;
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0]["action"], "expire");
        assert_eq!(answers[0]["outcome"], "deny");
        assert_eq!(answers[0]["principal"], Value::Null);
        // Too late to approve; asking again opens a new request.
        let approver = env
            .api(engine.http_addr())
            .with_token(Some(&env.token(&["approve:acme"]).await));
        let (status, text) = request(
            &approver,
            "POST",
            &format!("/v1/approvals/{id}/approve"),
            &[],
            b"",
        )
        .await;
        assert_eq!(status, 409);
        assert!(text.contains("approval_expired"), "{text}");
        let (_, body) = post_json(&asker, RULE, &admin_page("carol", "/admin/users")).await;
        assert_ne!(body["approval"]["id"], id.as_str());

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
