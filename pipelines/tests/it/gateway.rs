//! The forward-auth gateway through a real nginx (Debian's package, `auth_request`): nginx
//! asks the engine about each request before passing it to the application, and every answer
//! leaves a logged decision with its receipt.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use portcullis::runtime::block_on;
use serde_json::Value;

use crate::common;
use crate::common::{exchange, free_port, request, Api, Exchanged, TestEnv};

const NGINX: &str = "/usr/sbin/nginx";
const RULE: &str = "/v1/gateway/acme/gateway/allow";

/// nginx in front of a stand-in application (a second server block that echoes what reached
/// it), guarded by `snippet` (what `portcullis gateway nginx` printed).
fn nginx_conf(dir: &Path, port: u16, app_port: u16, snippet: &str) -> String {
    std::fs::write(dir.join("portcullis-acme.conf"), snippet).unwrap();
    let d = dir.display();
    format!(
        r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{app_port};
    location / {{ return 200 "app: $request_method $request_uri for $http_x_forwarded_user\n"; }}
  }}
  server {{
    listen 127.0.0.1:{port};
    include {d}/portcullis-acme.conf;
    location / {{
      proxy_set_header X-Forwarded-User $http_x_user;
      proxy_pass http://127.0.0.1:{app_port};
    }}
  }}
}}
"#
    )
}

/// nginx's master process; stopped with SIGTERM when dropped, which stops its workers too (a
/// SIGKILL would leave them behind).
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid, which `wait` below has not yet reaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Starts nginx on `conf`; stopped when the guard drops.
async fn start_nginx(dir: &Path, conf: &str, port: u16) -> Nginx {
    assert!(
        Path::new(NGINX).exists(),
        "{NGINX} is missing: scripts/test installs it (scripts/proxy-tools)"
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, conf).unwrap();
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&file)
        .spawn()
        .expect("start nginx");
    let guard = Nginx(child);
    let until = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        assert!(Instant::now() < until, "nginx did not start: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    guard
}

async fn through(nginx: &Api, method: &str, path: &str, who: &[(&str, &str)]) -> Exchanged {
    exchange(nginx, method, path, who, b"")
        .await
        .unwrap_or_else(|| panic!("nginx answered nothing to {method} {path}"))
}

/// The input logged with `decision`, once the decision log has written it.
async fn logged_input(env: &TestEnv, decision: uuid::Uuid) -> Value {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let input: Option<Value> =
            sqlx::query_scalar("SELECT input FROM api_decisions WHERE decision_id = $1")
                .bind(decision)
                .fetch_optional(&env.pool)
                .await
                .unwrap();
        if let Some(input) = input {
            return input;
        }
        assert!(Instant::now() < until, "decision {decision} was not logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn nginx_lets_through_what_policy_allows_and_stops_the_rest_with_receipts() {
    block_on(async {
        let mut env = TestEnv::new("gateway").await;
        env.config.kafka.enabled = false;
        let engine = env.start().await;
        // The proxy's configuration as the CLI prints it, with a token it makes. `X-User` and
        // `X-Groups` from the client stand in for what an authenticating proxy would set.
        let engine_url = format!("http://{}", engine.http_addr());
        let (code, snippet, stderr) = env.cli(&[
            "gateway",
            "nginx",
            "--tenant",
            "acme",
            "--engine",
            &engine_url,
            "--create-token",
            "--user-variable",
            "$http_x_user",
            "--groups-variable",
            "$http_x_groups",
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains("gateway-acme"), "{stderr}");
        let gateway_token = snippet
            .split("Bearer ")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        let dir = tempfile::tempdir().unwrap();
        let (port, app_port) = (free_port(), free_port());
        let conf = nginx_conf(dir.path(), port, app_port, &snippet);
        let _nginx = start_nginx(dir.path(), &conf, port).await;
        let nginx = Api {
            addr: ([127, 0, 0, 1], port).into(),
            token: None,
        };
        let alice = [("X-User", "alice"), ("X-Groups", "finance,ops")];
        let bob = [("X-User", "bob"), ("X-Groups", "ops")];

        // Allowed: the application answers, and the decision's id comes back.
        let r = through(&nginx, "GET", "/reports/q3?format=pdf", &alice).await;
        assert_eq!(r.status, 200, "{} {}", r.head, r.body);
        assert_eq!(r.body, "app: GET /reports/q3?format=pdf for alice\n");
        let allowed = r.header("X-Portcullis-Decision-Id").unwrap().to_owned();
        // Refused: the application never sees the request.
        let r = through(&nginx, "GET", "/reports/q3", &bob).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(!r.body.contains("app:"));
        let refused = r.header("X-Portcullis-Decision-Id").unwrap().to_owned();
        let r = through(&nginx, "DELETE", "/wiki/home", &alice).await;
        assert_eq!(r.status, 403);
        let deleting = r.header("X-Portcullis-Decision-Id").unwrap().to_owned();
        let r = through(&nginx, "GET", "/wiki/home", &[]).await;
        assert_eq!(r.status, 403, "nobody signed in");
        assert_eq!(through(&nginx, "GET", "/wiki/home", &bob).await.status, 200);
        // A client cannot speak for the proxy: its own identity headers are replaced, and an
        // encoded or roundabout path is judged as the application will read it.
        let spoofed = [
            ("X-User", "bob"),
            ("X-Forwarded-Groups", "finance"),
            ("X-Original-URI", "/wiki/home"),
            ("X-Portcullis-Token", "pct_forged"),
        ];
        let r = through(&nginx, "GET", "/reports/q3", &spoofed).await;
        assert_eq!(r.status, 403, "{}", r.body);
        for sneaky in [
            "/%72eports/q3",
            "//reports/q3",
            "/wiki/../reports/q3",
            "/reports%2Fq3",
            "/wiki/..%2freports/q3",
            "/reports;x/q3",
        ] {
            let r = through(&nginx, "GET", sneaky, &bob).await;
            assert_eq!(r.status, 403, "{sneaky}: {}", r.body);
        }
        // A path servers read differently is refused: nginx turns that into a 500, closed.
        let r = through(&nginx, "GET", "/wiki\\..\\reports/q3", &bob).await;
        assert_eq!(r.status, 500, "{}", r.body);

        // The admin area needs an approver: 403 with the request's id until one says yes,
        // then the same request passes (and names the approval).
        let r = through(&nginx, "GET", "/admin/users", &alice).await;
        assert_eq!(r.status, 403);
        let approval = r.header("X-Portcullis-Approval-Id").unwrap().to_owned();
        let again = through(&nginx, "GET", "/admin/users", &alice).await;
        assert_eq!(
            again.header("X-Portcullis-Approval-Id"),
            Some(approval.as_str())
        );
        let (code, out, err) = env.cli(&["approval", "approve", &approval, "--as", "ops-lead"]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("approved by ops-lead: alice GET 127.0.0.1/admin/users"),
            "{out}"
        );
        let r = through(&nginx, "GET", "/admin/users", &alice).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, "app: GET /admin/users for alice\n");
        assert_eq!(
            through(&nginx, "GET", "/admin/users", &bob).await.status,
            403,
            "bob's is another request"
        );

        // Each answer left a receipt naming who asked for what, and why not.
        let receipt = common::receipt_of(&env, &allowed).await;
        assert_eq!(receipt["principal"], "alice");
        assert_eq!(receipt["action"], "GET");
        assert_eq!(receipt["outcome"], "allow");
        assert_eq!(receipt["rule"], "data.tenants.acme.gateway.allow");
        let receipt = common::receipt_of(&env, &refused).await;
        assert_eq!(receipt["principal"], "bob");
        assert_eq!(receipt["outcome"], "deny");
        assert_eq!(
            receipt["reasons"],
            serde_json::json!(["reports are for the finance group"])
        );
        let receipt = common::receipt_of(&env, &deleting).await;
        assert_eq!(receipt["action"], "DELETE");
        assert_eq!(receipt["outcome"], "deny");

        // The decision log has the request as policy saw it, without the proxy's token.
        let input = logged_input(&env, uuid::Uuid::parse_str(&allowed).unwrap()).await;
        assert_eq!(input["request"]["path"], "/reports/q3");
        assert_eq!(input["request"]["query"], "format=pdf");
        assert_eq!(input["request"]["client_ip"], "127.0.0.1");
        assert_eq!(input["groups"], serde_json::json!(["finance", "ops"]));
        assert!(
            !input.to_string().contains(&gateway_token),
            "the proxy's token is not logged: {input}"
        );

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}

#[test]
fn the_gateway_asks_for_a_query_token_and_a_described_request() {
    block_on(async {
        let mut env = TestEnv::new("gateway_refusals").await;
        env.config.kafka.enabled = false;
        let engine = env.start().await;
        let api = env.api(engine.http_addr());
        let described = [
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/wiki"),
            ("X-Forwarded-User", "alice"),
        ];

        // Another tenant's token is refused, as on the decision API.
        let other = env.token(&["query:globex"]).await;
        let (status, body) =
            request(&api.with_token(Some(&other)), "GET", RULE, &described, b"").await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("may not query tenant acme"), "{body}");
        // No token: 401, which nginx passes on to the client.
        let (status, _) = request(&api.with_token(None), "GET", RULE, &described, b"").await;
        assert_eq!(status, 401);
        // A proxy that does not describe the request is told how to.
        let (status, body) = request(&api, "GET", RULE, &[("X-Forwarded-User", "a")], b"").await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("X-Original-Method"), "{body}");
        let (status, body) = request(
            &api,
            "GET",
            RULE,
            &[("X-Original-Method", "GET"), ("X-Original-URI", "wiki")],
            b"",
        )
        .await;
        assert_eq!(status, 400);
        assert!(body.contains("absolute path"), "{body}");
        // Traefik's headers are read when Traefik asks (?proxy=traefik), with GET whatever the
        // method; nginx's names are then not believed (a client may add them itself).
        let traefik = format!("{RULE}?proxy=traefik");
        let (status, body) = request(
            &api,
            "GET",
            &traefik,
            &[
                ("X-Original-Method", "GET"),
                ("X-Forwarded-Method", "POST"),
                ("X-Forwarded-Uri", "/wiki"),
                ("X-Forwarded-User", "alice"),
            ],
            b"",
        )
        .await;
        assert_eq!(status, 403, "POST is refused by the example policy: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["outcome"], "deny");
        assert!(body["reasons"][0].as_str().unwrap().starts_with("POST"));
        // Traefik's chain carries the proxy's token in X-Portcullis-Token, beside the client's
        // own Authorization for the application: the first names the caller, neither is logged.
        let proxy_token = env.token(&["query:acme"]).await;
        let r = exchange(
            &api.with_token(None),
            "GET",
            &traefik,
            &[
                ("X-Portcullis-Token", &proxy_token),
                ("Authorization", "Bearer the-apps-own-jwt"),
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri", "/wiki"),
                ("X-Forwarded-User", "alice"),
            ],
            b"",
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let decision =
            uuid::Uuid::parse_str(r.header("X-Portcullis-Decision-Id").unwrap()).unwrap();
        let input = logged_input(&env, decision).await.to_string();
        assert!(
            !input.contains("the-apps-own-jwt") && !input.contains(&proxy_token),
            "{input}"
        );
        // Only on the gateway: elsewhere the header is no credential.
        let (status, _) = request(
            &api.with_token(None),
            "GET",
            "/v1/bundles",
            &[("X-Portcullis-Token", &proxy_token)],
            b"",
        )
        .await;
        assert_eq!(status, 401);
        let (code, yaml, _) = env.cli(&["gateway", "traefik", "--tenant", "acme"]);
        assert_eq!(code, 0);
        assert!(
            yaml.contains(
                "address: \"http://127.0.0.1:8181/v1/gateway/acme/gateway/allow?proxy=traefik\""
            ),
            "{yaml}"
        );
        assert!(
            yaml.contains("X-Portcullis-Token: \"PORTCULLIS_TOKEN\""),
            "{yaml}"
        );
        let (code, _, stderr) = env.cli(&[
            "gateway",
            "nginx",
            "--tenant",
            "acme",
            "--user-variable",
            "remote_user",
        ]);
        assert_ne!(code, 0);
        assert!(stderr.contains("not an nginx variable"), "{stderr}");

        // An unknown tenant and a rule that does not exist: the proxy fails closed.
        let (status, _) = request(&api, "GET", "/v1/gateway/nobody/x", &described, b"").await;
        assert_eq!(status, 404);
        let (status, _) = request(&api, "GET", "/v1/gateway/acme/no/such", &described, b"").await;
        assert_eq!(status, 403, "an undefined rule denies");

        engine.stop().await.unwrap();
        env.cleanup().await;
    });
}
