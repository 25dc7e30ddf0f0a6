//! Who may see and do what, against a running engine and real Postgres: every endpoint but
//! health and metrics needs a valid token, token edge cases are refused with reasons, and a
//! tenant's token reaches nothing of another tenant's.

use portcullis::runtime::block_on;

use std::time::{Duration, Instant};

use crate::common;
use crate::common::{request, ws_connect, Api, TestEnv};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

fn abac() -> Value {
    json!({"input": {"subject": {"tenant_id": "acme", "user_id": "alice"}, "action": "read",
        "resource": {"type": "sensor_data", "region": "EU"}}})
}

/// Every endpoint the API serves, as (method, path, body).
fn endpoints() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let abac = serde_json::to_vec(&abac()).unwrap();
    vec![
        ("POST", "/v1/data/tenants/acme/allow", abac),
        ("POST", "/v1/data/tenants/acme", b"{}".to_vec()),
        ("GET", "/v1/bundles", vec![]),
        ("GET", "/v1/bundles/acme", vec![]),
        ("GET", "/v1/stream/decisions?tenant_id=acme", vec![]),
        ("GET", "/v1/stream/decisions", vec![]),
        ("GET", "/v1/whoami", vec![]),
        ("GET", "/v1/tokens", vec![]),
        (
            "POST",
            "/v1/tokens",
            br#"{"name": "x", "scopes": ["admin"]}"#.to_vec(),
        ),
        ("DELETE", "/v1/tokens/x", vec![]),
        ("GET", "/v1/tenants", vec![]),
        ("GET", "/v1/events", vec![]),
        ("GET", "/v1/events/acme/e-1", vec![]),
        ("GET", "/v1/decisions?outcome=deny", vec![]),
        (
            "GET",
            "/v1/decisions/01a233f1-bdc8-77d3-aa44-dd33a1f749bb",
            vec![],
        ),
        ("GET", "/v1/dead-letters", vec![]),
        (
            "POST",
            "/v1/dead-letters/replay",
            br#"{"ids": ["x"]}"#.to_vec(),
        ),
        ("GET", "/v1/no-such-endpoint", vec![]),
    ]
}

async fn call(to: &Api, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    call_with(to, method, path, &[], body).await
}

async fn call_with(
    to: &Api,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let (status, text) = request(to, method, path, headers, body).await;
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[test]
fn no_endpoint_but_health_and_metrics_answers_without_a_valid_token() {
    block_on(async {
        let env = TestEnv::new("access_none").await;
        let engine = env.start().await;
        let bare = Api::from(engine.http_addr());

        for path in ["/healthz", "/readyz", "/metrics"] {
            let (status, _) = call(&bare, "GET", path, b"").await;
            assert!(status == 200 || status == 503, "{path} answered {status}");
        }
        // The console's page is static and holds no data: it is served to sign in from.
        let (status, page) = request(&bare, "GET", "/console/", &[], b"").await;
        assert_eq!(status, 200);
        assert!(page.contains("<main") && !page.contains("acme"), "{page}");
        for (method, path, body) in endpoints() {
            let (status, answer) = call(&bare, method, path, &body).await;
            assert_eq!(status, 401, "{method} {path} without a token: {answer}");
            assert_eq!(answer["code"], "unauthorized", "{method} {path}: {answer}");
            assert!(message(&answer).contains("Bearer"), "{answer}");
        }

        // The same with every kind of bad token, on every endpoint.
        let admin = env.admin_token.clone();
        let expired = env.token_named("expired", &["admin"]).await;
        sqlx::query(
            "UPDATE api_tokens SET expires_at = now() - interval '1 minute' WHERE name = 'expired'",
        )
        .execute(&env.pool)
        .await
        .unwrap();
        let truncated = admin[..admin.len() - 1].to_owned();
        let unknown = format!("pcl_{}", "A".repeat(43));
        // (what, Authorization header or none, token in the query string, what the answer says)
        let cases = [
            (
                "wrong scheme",
                Some(format!("Basic {admin}")),
                false,
                "only bearer tokens",
            ),
            (
                "no scheme",
                Some(admin.clone()),
                false,
                "only bearer tokens",
            ),
            (
                "truncated",
                Some(format!("Bearer {truncated}")),
                false,
                "cut short",
            ),
            (
                "not a token",
                Some("Bearer hunter2".into()),
                false,
                "malformed",
            ),
            (
                "unknown",
                Some(format!("Bearer {unknown}")),
                false,
                "not known",
            ),
            (
                "expired",
                Some(format!("Bearer {expired}")),
                false,
                "expired",
            ),
            ("in the query string", None, true, "never in the URL"),
        ];
        for (what, authorization, in_query, says) in &cases {
            for (method, path, body) in endpoints() {
                let path = if *in_query {
                    let sep = if path.contains('?') { '&' } else { '?' };
                    format!("{path}{sep}access_token={admin}")
                } else {
                    path.to_owned()
                };
                let headers: Vec<(&str, &str)> = authorization
                    .iter()
                    .map(|v| ("Authorization", v.as_str()))
                    .collect();
                let (status, answer) = call_with(&bare, method, &path, &headers, &body).await;
                assert_eq!(status, 401, "{what}: {method} {path}: {answer}");
                assert!(
                    message(&answer).contains(says),
                    "{what}: {method} {path}: {answer}"
                );
                assert!(
                    !answer.to_string().contains(&admin[4..]),
                    "an answer quotes the token: {answer}"
                );
            }
        }

        // A revoked token is refused at once, although the engine had checked and cached it.
        let api = env.api(engine.http_addr());
        let revokable = api.with_token(Some(&env.token_named("revokable", &["read:acme"]).await));
        assert_eq!(
            call(&revokable, "GET", "/v1/bundles/acme", b"").await.0,
            200
        );
        let id = portcullis::access::revoke_token(&env.pool, "revokable")
            .await
            .unwrap()
            .token_id;
        let started = Instant::now();
        let answer = loop {
            let (status, answer) = call(&revokable, "GET", "/v1/bundles/acme", b"").await;
            if status == 401 {
                break answer;
            }
            assert!(
                started.elapsed() < WAIT,
                "a revoked token still served: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(message(&answer).contains("revoked"), "{answer}");

        // Last use is recorded; the good token still works throughout.
        let (status, me) = call(&api, "GET", "/v1/whoami", b"").await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["result"]["scopes"], json!(["admin"]));
        let used: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT last_used_at FROM api_tokens WHERE token_id = $1")
                .bind(id)
                .fetch_one(&env.pool)
                .await
                .unwrap();
        assert!(used.is_some(), "last use not recorded");

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn a_tenant_token_reaches_nothing_of_another_tenants() {
    block_on(async {
        let env = TestEnv::new("access_tenant").await;
        let engine = env.start().await;
        let admin = env.api(engine.http_addr());
        let acme = admin.with_token(Some(&env.token(&["query:acme", "read:acme"]).await));
        let query_only = admin.with_token(Some(&env.token(&["query:acme"]).await));
        let read_only = admin.with_token(Some(&env.token(&["read:acme"]).await));
        let abac = serde_json::to_vec(&abac()).unwrap();

        // Its own tenant: answered.
        let (status, body) = call(&acme, "POST", "/v1/data/tenants/acme/allow", &abac).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["allow"], true);
        let (status, body) = call(&acme, "GET", "/v1/bundles/acme", b"").await;
        assert_eq!(status, 200, "{body}");

        // Another tenant's everything: 403, the same for a tenant that does not exist, so a
        // token cannot learn which tenants there are.
        for other in ["globex", "initech", "umbrella"] {
            for (method, path, body) in [
                (
                    "POST",
                    format!("/v1/data/tenants/{other}/allow"),
                    abac.clone(),
                ),
                ("POST", format!("/v1/data/tenants/{other}"), b"{}".to_vec()),
                ("GET", format!("/v1/bundles/{other}"), vec![]),
                (
                    "GET",
                    format!("/v1/stream/decisions?tenant_id={other}"),
                    vec![],
                ),
            ] {
                let (status, answer) = call(&acme, method, &path, &body).await;
                assert_eq!(status, 403, "{method} {path}: {answer}");
                assert_eq!(answer["code"], "forbidden");
                assert!(message(&answer).contains(other), "{answer}");
            }
        }
        // Lists show only its tenants; what needs the admin scope is refused.
        let (status, body) = call(&acme, "GET", "/v1/bundles", b"").await;
        assert_eq!(status, 200);
        let tenants: Vec<&str> = body["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["tenant_id"].as_str().unwrap())
            .collect();
        assert_eq!(tenants, ["acme"]);
        let (_, body) = call(&admin, "GET", "/v1/bundles", b"").await;
        assert!(body["result"].as_array().unwrap().len() >= 3, "{body}");
        for (method, path, body) in [
            ("GET", "/v1/stream/decisions", vec![]),
            ("GET", "/v1/tokens", vec![]),
            (
                "POST",
                "/v1/tokens",
                br#"{"name": "mine", "scopes": ["admin"]}"#.to_vec(),
            ),
            ("DELETE", "/v1/tokens/test-admin", vec![]),
        ] {
            let (status, answer) = call(&acme, method, path, &body).await;
            assert_eq!(status, 403, "{method} {path}: {answer}");
            assert!(message(&answer).contains("admin scope"), "{answer}");
        }
        // Roles are separate: querying is not reading, and reading is not querying.
        let (status, _) = call(&query_only, "GET", "/v1/bundles/acme", b"").await;
        assert_eq!(status, 403);
        let (_, body) = call(&query_only, "GET", "/v1/bundles", b"").await;
        assert_eq!(body["result"], json!([]));
        let (status, _) = call(&read_only, "POST", "/v1/data/tenants/acme/allow", &abac).await;
        assert_eq!(status, 403);

        // On the stream, it sees its tenant's decisions and never another's.
        let mut stream = ws_connect(&acme, "?tenant_id=acme", &[]).await.unwrap();
        let hello = common::next_json(&mut stream).await;
        assert_eq!(hello["type"], "connected");
        let (status, _) = call(&admin, "POST", "/v1/data/tenants/globex/allow", &abac).await;
        assert_eq!(status, 200);
        let (_, mine) = call(&acme, "POST", "/v1/data/tenants/acme/allow", &abac).await;
        let seen = common::next_json(&mut stream).await;
        assert_eq!(seen["data"]["tenant_id"], "acme", "{seen}");
        assert_eq!(seen["data"]["decision_id"], mine["decision_id"], "{seen}");
        // A read:acme token may not watch everyone: refused before the upgrade.
        assert!(ws_connect(&acme, "", &[]).await.is_err());

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn admins_make_list_and_revoke_tokens_through_the_api() {
    block_on(async {
        let env = TestEnv::new("access_admin").await;
        let engine = env.start().await;
        let admin = env.api(engine.http_addr());

        let (status, made) = call(
            &admin,
            "POST",
            "/v1/tokens",
            br#"{"name": "grafana", "scopes": ["read:acme"], "expires_in": "30d"}"#,
        )
        .await;
        assert_eq!(status, 201, "{made}");
        let token = made["result"]["token"].as_str().unwrap().to_owned();
        let id = made["result"]["token_id"].as_str().unwrap().to_owned();
        assert_eq!(made["result"]["state"], "active");
        assert_eq!(made["result"]["created_by"], "token:test-admin");

        let grafana = admin.with_token(Some(&token));
        let (status, me) = call(&grafana, "GET", "/v1/whoami", b"").await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["result"]["name"], "grafana");
        assert_eq!(me["result"]["scopes"], json!(["read:acme"]));
        assert_eq!(me["result"]["admin"], false);

        // Listed without its secret.
        let (status, list) = call(&admin, "GET", "/v1/tokens", b"").await;
        assert_eq!(status, 200);
        let listed = list.to_string();
        assert!(
            listed.contains("grafana") && !listed.contains(&token[4..]),
            "{listed}"
        );
        assert!(!listed.contains("secret"), "{listed}");

        // Bad requests say what is wrong.
        for (body, says) in [
            (r#"{"name": "x", "scopes": ["root"]}"#, "root"),
            (r#"{"name": "x", "scopes": []}"#, "at least one scope"),
            (r#"{"name": "x", "scopes": ["read:Acme"]}"#, "read:Acme"),
            (
                r#"{"name": "x", "scopes": ["admin"], "expires_in": "soon"}"#,
                "soon",
            ),
            (r#"{"name": "", "scopes": ["admin"]}"#, "name"),
            (
                r#"{"name": "x", "scopes": ["admin"], "owner": "me"}"#,
                "owner",
            ),
            (r#"not json"#, "expected"),
        ] {
            let (status, answer) = call(&admin, "POST", "/v1/tokens", body.as_bytes()).await;
            assert_eq!(status, 400, "{body}: {answer}");
            assert!(message(&answer).contains(says), "{body}: {answer}");
        }

        let (status, revoked) = call(&admin, "DELETE", &format!("/v1/tokens/{id}"), b"").await;
        assert_eq!(status, 200, "{revoked}");
        assert_eq!(revoked["result"]["state"], "revoked");
        let started = Instant::now();
        while call(&grafana, "GET", "/v1/whoami", b"").await.0 != 401 {
            assert!(started.elapsed() < WAIT, "revoked token still accepted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, _) = call(&admin, "DELETE", "/v1/tokens/no-such-token", b"").await;
        assert_eq!(status, 404);

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn a_browser_signs_in_to_the_stream_with_the_websocket_protocol() {
    block_on(async {
        let env = TestEnv::new("access_ws").await;
        let engine = env.start().await;
        let bare = Api::from(engine.http_addr());
        let offered = format!("portcullis, portcullis.token.{}", env.admin_token);
        let mut ws = ws_connect(&bare, "", &[("Sec-WebSocket-Protocol", &offered)])
            .await
            .expect("signed in by subprotocol");
        assert_eq!(common::next_json(&mut ws).await["type"], "connected");
        let bad = format!("portcullis, portcullis.token.pcl_{}", "A".repeat(43));
        assert!(ws_connect(&bare, "", &[("Sec-WebSocket-Protocol", &bad)])
            .await
            .is_err());
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn with_authentication_off_on_loopback_everyone_is_let_in() {
    block_on(async {
        let env = TestEnv::new("access_off").await;
        let mut config = env.config.clone();
        config.http.auth = false;
        let engine = env.start_with(config).await;
        let bare = Api::from(engine.http_addr());
        let (status, me) = call(&bare, "GET", "/v1/whoami", b"").await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["result"]["admin"], true);
        let (status, _) = call(&bare, "GET", "/v1/bundles/acme", b"").await;
        assert_eq!(status, 200);
        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn the_token_command_makes_lists_and_revokes_tokens() {
    block_on(async {
        let env = TestEnv::new("access_cli").await;
        let engine = env.start().await;
        let bare = Api::from(engine.http_addr());

        let (code, out, err) = env.cli(&[
            "token",
            "create",
            "--name",
            "ops",
            "--scope",
            "read:acme",
            "--scope",
            "query:acme",
        ]);
        assert_eq!(code, 0, "{err}");
        // Only the token on standard output, so `$(portcullis token create ...)` captures it.
        let token = out.trim().to_owned();
        assert!(
            token.starts_with("pcl_") && !token.contains(char::is_whitespace),
            "{out}"
        );
        assert!(err.contains("shown only now"), "{err}");
        let ops = bare.with_token(Some(&token));
        let (status, me) = call(&ops, "GET", "/v1/whoami", b"").await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["result"]["scopes"], json!(["query:acme", "read:acme"]));

        let (code, out, _) = env.cli(&["token", "list"]);
        assert_eq!(code, 0);
        let line = out.lines().find(|l| l.contains("ops")).expect("ops listed");
        assert!(
            line.contains("active") && line.contains("read:acme"),
            "{line}"
        );
        assert!(!out.contains(&token[4..]), "list shows a secret:\n{out}");

        for (args, says) in [
            (vec!["--scope", "root"], "root"),
            (vec!["--scope", "read:Acme"], "read:Acme"),
            (vec!["--scope", "admin", "--expires-in", "soon"], "soon"),
        ] {
            let mut all = vec!["token", "create", "--name", "bad"];
            all.extend(args);
            let (code, out, err) = env.cli(&all);
            assert_ne!(code, 0, "{all:?} succeeded: {out}");
            assert!(err.contains(says), "{all:?}: {err}");
        }

        let (code, out, err) = env.cli(&["token", "revoke", "ops"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("revoked"), "{out}");
        let started = Instant::now();
        while call(&ops, "GET", "/v1/whoami", b"").await.0 != 401 {
            assert!(started.elapsed() < WAIT, "revoked token still accepted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (code, _, err) = env.cli(&["token", "revoke", "nobody"]);
        assert_ne!(code, 0);
        assert!(err.contains("no token"), "{err}");

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn a_revoked_token_ends_the_stream_it_opened() {
    block_on(async {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        use tokio_tungstenite::tungstenite::Message;

        let env = TestEnv::new("access_stream_revoke").await;
        let engine = env.start().await;
        let watcher = Api::from(engine.http_addr())
            .with_token(Some(&env.token_named("watcher", &["read:acme"]).await));
        let mut ws = ws_connect(&watcher, "?tenant_id=acme", &[]).await.unwrap();
        assert_eq!(common::next_json(&mut ws).await["type"], "connected");

        portcullis::access::revoke_token(&env.pool, "watcher")
            .await
            .unwrap();
        let closed = tokio::time::timeout(WAIT, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => continue,
                    other => panic!("the stream ended without a close frame: {other:?}"),
                }
            }
        })
        .await
        .expect("the stream of a revoked token is closed");
        let frame = closed.expect("a close frame with a reason");
        assert_eq!(frame.code, CloseCode::Policy);
        assert!(frame.reason.contains("revoked"), "{}", frame.reason);

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
