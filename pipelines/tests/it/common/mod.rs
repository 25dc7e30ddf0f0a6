//! A scratch world per test on the real services: its own database, Kafka topic and consumer
//! group, MQTT client id and topic prefix, and a copy of the shipped tenant policies.

#![allow(dead_code)]

pub mod agent;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::config::Config;
use portcullis::runtime;
use portcullis::sinks::postgres;
use portcullis::telemetry::stats::Stats;
use portcullis_engine::TenantId;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rumqttc::{AsyncClient, Event, MqttOptions};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub const ACME_ACCOUNT: &str = "111111111111";

/// How long a count must stay still before [`TestEnv::expect_count`] takes it as final.
pub const SETTLE: Duration = Duration::from_millis(700);

#[allow(unused_imports)] // not every test module needs it
pub use portcullis::testing::require;

pub struct TestEnv {
    pub config: Config,
    pub pool: PgPool,
    pub suffix: String,
    /// A token with the all-tenants `admin` scope, made in this test's database.
    pub admin_token: String,
    _bundles: tempfile::TempDir,
    /// The signing key and other files of this test's engine.
    _state: tempfile::TempDir,
}

pub fn base_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL").unwrap_or_else(|_| Config::default().postgres.url)
}

fn repo_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tenants")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl TestEnv {
    pub async fn new(tag: &str) -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let mut config = Config::default();
        let base = base_url();
        let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
        config.postgres.url = format!("{prefix}/pc_test_{tag}_{suffix}");
        config.postgres.max_connections = 4;
        config.kafka.topic = format!("ct_{tag}_{suffix}");
        config.kafka.group_id = format!("g_{tag}_{suffix}");
        config.kafka.topic_partitions = 2;
        config.kafka.statistics_interval_ms = 500;
        config.compliance.commands_topic = format!("rem_cmd_{tag}_{suffix}");
        config.compliance.results_topic = format!("rem_res_{tag}_{suffix}");
        config.mqtt.client_id = format!("pc-test-{tag}-{suffix}");
        config.mqtt.topic_prefix = format!("pctest/{suffix}");
        config.actors.workers = 2;
        config.postgres.registry_refresh_secs = 1;
        config.http.listen = "127.0.0.1:0".into(); // tests run in parallel: any free port
        let bundles = tempfile::tempdir().unwrap();
        copy_dir(&repo_policies(), bundles.path());
        config.policy.bundles_dir = bundles.path().to_owned();
        config.policy.packs_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/packs");
        let state = tempfile::tempdir().unwrap();
        config.distribution.signing_key_file = state.path().join("keys/policy-signing.key");
        config.evidence.key_file = state.path().join("keys/evidence-log.key");

        let pool = postgres::migrate(&config.postgres)
            .await
            .expect("migrate a scratch database");
        postgres::add_tenant(
            &pool,
            &TenantId::parse("acme").unwrap(),
            Some("Acme"),
            &[ACME_ACCOUNT.into()],
        )
        .await
        .unwrap();
        let admin_token = make_token(&pool, "test-admin", &["admin"]).await;
        Self {
            config,
            pool,
            suffix,
            admin_token,
            _bundles: bundles,
            _state: state,
        }
    }

    /// A token with `scopes`, valid for an hour.
    pub async fn token(&self, scopes: &[&str]) -> String {
        self.token_named(&format!("test-{}", scopes.join("-")), scopes)
            .await
    }

    /// A token named `name` (for a test to find its row) with `scopes`, valid for an hour.
    pub async fn token_named(&self, name: &str, scopes: &[&str]) -> String {
        make_token(&self.pool, name, scopes).await
    }

    /// Maps AWS `account` to `tenant` and waits out the engine's registry refresh
    /// (`postgres.registry_refresh_secs`), so what follows sees the mapping.
    pub async fn map_account(&self, tenant: &str, account: &str) {
        postgres::add_tenant(
            &self.pool,
            &TenantId::parse(tenant).unwrap(),
            None,
            &[account.into()],
        )
        .await
        .unwrap();
        let refresh = Duration::from_secs(self.config.postgres.registry_refresh_secs);
        tokio::time::sleep(refresh * 2 + Duration::from_millis(500)).await;
    }

    /// The engine's API at `addr`, as the test's admin.
    pub fn api(&self, addr: std::net::SocketAddr) -> Api {
        Api {
            addr,
            token: Some(self.admin_token.clone()),
        }
    }

    /// This test's database name.
    pub fn database(&self) -> String {
        database_of(&self.config.postgres.url)
    }

    pub fn bundles_dir(&self) -> &Path {
        &self.config.policy.bundles_dir
    }

    pub fn device_topic(&self, tenant: &str, agent: &str) -> String {
        format!(
            "{}/{tenant}/agents/{agent}/events",
            self.config.mqtt.topic_prefix
        )
    }

    /// Starts the engine in this process; stop it with [`Running::stop`].
    pub async fn start(&self) -> Running {
        self.start_with(self.config.clone()).await
    }

    /// Starts an engine with other settings (e.g. a second member of a group).
    pub async fn start_with(&self, config: Config) -> Running {
        let stats = Arc::new(Stats::default());
        let cancel = CancellationToken::new();
        let handle = actix_rt::spawn(runtime::run(config, stats.clone(), cancel.clone()));
        let mut running = Running {
            stats,
            cancel,
            handle,
        };
        running.wait_ready().await;
        running
    }

    /// Starts the real `portcullis run` binary on `config`. The process is killed when the
    /// returned guard drops, so a failing test cannot leave an engine running.
    pub fn spawn_binary(&self, config: &Config) -> ChildGuard {
        let file = self
            ._bundles
            .path()
            .join(format!("portcullis-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&file, toml::to_string(config).unwrap()).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["--config", file.to_str().unwrap(), "run"])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start portcullis run");
        ChildGuard(child)
    }

    /// Sends remediation results (JSON, or a JSON string's raw text for garbage) on the results
    /// topic, as an executor would.
    pub async fn report_remediation_results(&self, results: &[serde_json::Value]) {
        let kafka = &self.config.kafka;
        let topic = &self.config.compliance.results_topic;
        let producer = portcullis::sources::kafka::producer(kafka).unwrap();
        let messages: Vec<(String, Vec<u8>)> = results
            .iter()
            .map(|r| {
                let payload = match r {
                    serde_json::Value::String(raw) => raw.as_bytes().to_vec(),
                    json => serde_json::to_vec(json).unwrap(),
                };
                ("acme".to_owned(), payload)
            })
            .collect();
        portcullis::sources::kafka::ensure_topic(kafka, topic, 1)
            .await
            .unwrap();
        portcullis::sources::kafka::produce_all(&producer, topic, &messages)
            .await
            .unwrap();
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Polls `sql` (a count) until it reaches at least `want` or `timeout` passes; returns the
    /// last value. For progress ("the stream has started", "a quarter is in"); a test that
    /// means exactly `want` uses [`Self::expect_count`].
    pub async fn wait_at_least(&self, sql: &str, want: i64, timeout: Duration) -> i64 {
        let until = Instant::now() + timeout;
        loop {
            let n = self.count(sql).await;
            if n >= want || Instant::now() > until {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls `sql` (a count) until it reaches `want` (or `timeout` passes), then keeps counting
    /// until it has not changed for [`SETTLE`]: rows that arrive late, a duplicate say, are
    /// counted too. Returns that settled count, for the test to compare with exactly `want`.
    pub async fn expect_count(&self, sql: &str, want: i64, timeout: Duration) -> i64 {
        let mut last = self.wait_at_least(sql, want, timeout).await;
        let mut still_since = Instant::now();
        while still_since.elapsed() < SETTLE {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let n = self.count(sql).await;
            if n != last {
                (last, still_since) = (n, Instant::now());
            }
        }
        last
    }

    /// Produces concurrently (many in flight), for large volumes.
    pub async fn produce_many(&self, messages: Vec<(String, Vec<u8>)>) {
        let k = &self.config.kafka;
        portcullis::sources::kafka::ensure_topic(k, &k.topic, k.topic_partitions)
            .await
            .unwrap();
        let producer = portcullis::sources::kafka::producer(k).unwrap();
        portcullis::sources::kafka::produce_all(&producer, &k.topic, &messages)
            .await
            .expect("produce");
    }

    pub async fn produce(&self, messages: &[(&str, Vec<u8>)]) {
        portcullis::sources::kafka::ensure_topic(
            &self.config.kafka,
            &self.config.kafka.topic,
            self.config.kafka.topic_partitions,
        )
        .await
        .unwrap();
        let producer: FutureProducer =
            portcullis::sources::kafka::client_config(&self.config.kafka)
                .create()
                .unwrap();
        for (key, payload) in messages {
            producer
                .send(
                    FutureRecord::to(&self.config.kafka.topic)
                        .key(*key)
                        .payload(payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("produce");
        }
    }

    /// Publishes with QoS 1 and waits for every PUBACK.
    pub async fn publish(&self, messages: &[(String, Vec<u8>)]) {
        let id = format!("pc-test-pub-{}", uuid::Uuid::new_v4().simple());
        let publish =
            portcullis::sources::mqtt::publish_all(&self.config.mqtt, &id, messages.to_vec());
        tokio::time::timeout(Duration::from_secs(60), publish)
            .await
            .expect("mqtt publishes acknowledged within 60 s")
            .expect("mqtt publish");
    }

    /// Publishes with QoS 0 (fire and forget) and returns once every message has left.
    pub async fn publish_qos0(&self, messages: &[(String, Vec<u8>)]) {
        let id = format!("pc-test-pub0-{}", uuid::Uuid::new_v4().simple());
        let mut opts = MqttOptions::new(id, &self.config.mqtt.host, self.config.mqtt.port);
        opts.set_max_packet_size(64 * 1024, 16 * 1024 * 1024);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let expected = messages.len();
        let poller = tokio::spawn(async move {
            let mut sent = 0;
            loop {
                match eventloop.poll().await.expect("mqtt connection") {
                    Event::Outgoing(rumqttc::Outgoing::Publish(_)) => sent += 1,
                    Event::Outgoing(rumqttc::Outgoing::Disconnect) => return sent,
                    _ => {}
                }
                let _ = expected;
            }
        });
        for (topic, payload) in messages {
            client
                .publish(topic, rumqttc::QoS::AtMostOnce, false, payload.clone())
                .await
                .unwrap();
        }
        client.disconnect().await.unwrap();
        let sent = tokio::time::timeout(Duration::from_secs(60), poller)
            .await
            .expect("QoS 0 publishes sent within 60 s")
            .unwrap();
        assert_eq!(sent, expected, "every QoS 0 message written to the broker");
    }

    /// Discards a persistent MQTT session so the broker does not keep one per test.
    pub async fn discard_mqtt_session(&self, client_id: &str) {
        portcullis::sinks::mqtt::discard_session(&self.config.mqtt, client_id).await;
    }

    /// Runs the `portcullis` binary on this test's database, policies and signing key:
    /// `(exit code, stdout, stderr)`.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(args)
            .env("PORTCULLIS_POSTGRES__URL", &self.config.postgres.url)
            .env(
                "PORTCULLIS_DISTRIBUTION__SIGNING_KEY_FILE",
                &self.config.distribution.signing_key_file,
            )
            .env(
                "PORTCULLIS_EVIDENCE__KEY_FILE",
                &self.config.evidence.key_file,
            )
            .env(
                "PORTCULLIS_POLICY__BUNDLES_DIR",
                &self.config.policy.bundles_dir,
            )
            .env(
                "PORTCULLIS_POLICY__PACKS_DIR",
                &self.config.policy.packs_dir,
            )
            .env("PORTCULLIS_MQTT__HOST", &self.config.mqtt.host)
            .env("PORTCULLIS_MQTT__PORT", self.config.mqtt.port.to_string())
            .env(
                "PORTCULLIS_MQTT__TOPIC_PREFIX",
                &self.config.mqtt.topic_prefix,
            )
            .envs(
                self.config
                    .mqtt
                    .username
                    .iter()
                    .map(|u| ("PORTCULLIS_MQTT__USERNAME", u.as_str())),
            )
            .envs(
                self.config
                    .mqtt
                    .password
                    .iter()
                    .map(|p| ("PORTCULLIS_MQTT__PASSWORD", p.as_str())),
            )
            .envs(
                self.config
                    .mqtt
                    .admin_username
                    .iter()
                    .map(|u| ("PORTCULLIS_MQTT__ADMIN_USERNAME", u.as_str())),
            )
            .envs(
                self.config
                    .mqtt
                    .admin_password
                    .iter()
                    .map(|p| ("PORTCULLIS_MQTT__ADMIN_PASSWORD", p.as_str())),
            )
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Clears the retained policy of every segment this test published, so the broker keeps
    /// nothing of it.
    async fn clear_retained_policies(&self) {
        let keys: Vec<(String, String)> =
            sqlx::query_as("SELECT tenant_id, segment_id FROM segments")
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
        if keys.is_empty() {
            return;
        }
        let cancel = CancellationToken::new();
        let publisher = portcullis::sinks::mqtt::MqttPublisher::start(
            &self.config.mqtt,
            &format!("pc-test-clear-{}", uuid::Uuid::new_v4().simple()),
            1024,
            Duration::from_secs(10),
            cancel.clone(),
        );
        // A test's own broker may be gone by now: then there is nothing to clear.
        let until = Instant::now() + Duration::from_secs(2);
        while !publisher.is_connected() {
            if Instant::now() > until {
                cancel.cancel();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for (tenant, segment) in keys {
            let topic = format!(
                "{}/{tenant}/segments/{segment}/policy",
                self.config.mqtt.topic_prefix
            );
            let _ = publisher.publish(topic, Vec::new(), true).await;
        }
        cancel.cancel();
    }

    pub async fn cleanup(self) {
        self.clear_retained_policies().await;
        self.discard_mqtt_session(&self.config.mqtt.client_id).await;
        self.pool.close().await;
        drop_database(&self.database()).await;
    }
}

async fn make_token(pool: &PgPool, name: &str, scopes: &[&str]) -> String {
    let new = portcullis::access::NewToken {
        name: name.into(),
        grants: portcullis_engine::access::Grants::parse(scopes).expect("valid scopes"),
        expires_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        created_by: "test".into(),
    };
    let (_, secret) = portcullis::access::create_token(pool, new)
        .await
        .expect("make a token");
    secret.expose().to_owned()
}

/// A TCP port free on loopback now (for a process that must be told its port up front).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The database name at the end of a Postgres URL.
pub fn database_of(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Drops a scratch database (best effort: connections are forced out).
pub async fn drop_database(name: &str) {
    if let Ok(admin) = sqlx::PgPool::connect(&base_url()).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&admin)
        .await;
        admin.close().await;
    }
}

/// Where a request goes, and the token it carries (none for a bare address).
#[derive(Clone, Debug)]
pub struct Api {
    pub addr: std::net::SocketAddr,
    pub token: Option<String>,
}

impl Api {
    /// The same address with another token (or none).
    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api {
            addr: self.addr,
            token: token.map(str::to_owned),
        }
    }
}

impl From<std::net::SocketAddr> for Api {
    fn from(addr: std::net::SocketAddr) -> Self {
        Api { addr, token: None }
    }
}

impl From<&Api> for Api {
    fn from(api: &Api) -> Self {
        api.clone()
    }
}

/// A plain HTTP/1.1 GET on loopback: `(status, body)`.
pub async fn http_get(to: impl Into<Api>, path: &str) -> (u16, String) {
    try_http_get(to, path)
        .await
        .expect("GET from the engine's HTTP port")
}

/// As [`http_get`], but `None` while nothing answers (a server still starting).
pub async fn try_http_get(to: impl Into<Api>, path: &str) -> Option<(u16, String)> {
    try_request(&to.into(), "GET", path, &[], b"").await
}

/// One HTTP/1.1 request with the target's token (if any) and `headers`: `(status, body)`, or
/// `None` while nothing answers.
pub async fn try_request(
    to: &Api,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    exchange(to, method, path, headers, body)
        .await
        .map(|r| (r.status, r.body))
}

/// An answer with its header block (`name: value` lines as received).
pub struct Exchanged {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Exchanged {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// As [`try_request`], keeping the answer's headers.
pub async fn exchange(
    to: &Api,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Exchanged> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = to.addr;
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = &to.token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.ok()?;
    // The server may answer (413) and close before reading a large body: not an error here.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok())?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .unwrap_or((response.clone(), String::new()));
    Some(Exchanged { status, head, body })
}

/// [`try_request`] that must be answered.
pub async fn request(
    to: impl Into<Api>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    try_request(&to.into(), method, path, headers, body)
        .await
        .unwrap_or_else(|| panic!("no HTTP answer to {method} {path}"))
}

/// A plain HTTP/1.1 POST of a JSON body on loopback: `(status, body)`.
pub async fn http_post(to: impl Into<Api>, path: &str, body: &[u8]) -> (u16, String) {
    request(to, "POST", path, &[], body).await
}

/// `http_post` of a JSON value, answered with JSON: `(status, body)`.
pub async fn post_json(
    to: impl Into<Api>,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let (status, text) = http_post(to, path, &serde_json::to_vec(body).unwrap()).await;
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: answer is not JSON ({e}): {text:?}"));
    (status, json)
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the decision stream (`query` starts with `?` or is empty) with the target's token in
/// the Authorization header, and `extra` headers.
pub async fn ws_connect(
    to: &Api,
    query: &str,
    extra: &[(&str, &str)],
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("ws://{}/v1/stream/decisions{query}", to.addr);
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    if let Some(token) = &to.token {
        headers.insert("Authorization", format!("Bearer {token}").parse().unwrap());
    }
    for (name, value) in extra {
        let name =
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        headers.insert(name, value.parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(ws)
}

/// The stream's next text message as JSON, within 30 s.
pub async fn next_json(ws: &mut Ws) -> serde_json::Value {
    use futures::StreamExt;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a stream message within 30 s")
            .expect("stream open")
            .expect("stream message");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Running {
    pub stats: Arc<Stats>,
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub fn http_addr(&self) -> std::net::SocketAddr {
        *self.stats.http_addr.get().expect("http server listening")
    }

    async fn wait_ready(&mut self) {
        let until = Instant::now() + Duration::from_secs(30);
        while !self
            .stats
            .mqtt_subscribed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            if self.handle.is_finished() {
                let why = (&mut self.handle).await;
                panic!("engine exited during start-up: {why:?}");
            }
            assert!(
                Instant::now() < until,
                "engine did not subscribe to MQTT within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Graceful stop; returns the engine's own result.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("engine stops within 20 s")?
    }
}

pub fn cloudtrail(event_id: &str, name: &str, mfa: Option<&str>) -> serde_json::Value {
    let mut rec = serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::{ACME_ACCOUNT}:user/alice"),
                         "accountId": ACME_ACCOUNT, "userName": "alice"},
        "eventTime": chrono::Utc::now().to_rfc3339(),
        "eventSource": if name == "ConsoleLogin" { "signin.amazonaws.com" } else { "s3.amazonaws.com" },
        "eventName": name,
        "sourceIPAddress": "203.0.113.9",
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACME_ACCOUNT,
    });
    if let Some(m) = mfa {
        rec["additionalEventData"] = serde_json::json!({"MFAUsed": m});
    }
    rec
}

/// A usual record of alice's for anomaly models: one of a few S3 calls, from the office, with
/// the CLI.
pub fn usual_cloudtrail(i: usize) -> serde_json::Value {
    let mut rec = cloudtrail(
        &format!("usual-{i}"),
        ["GetObject", "ListBuckets", "PutObject"][i % 3],
        None,
    );
    rec["sourceIPAddress"] = serde_json::json!("10.1.2.3");
    rec["userAgent"] = serde_json::json!("aws-cli/2.15.0 Python/3.11");
    rec["awsRegion"] = serde_json::json!("eu-west-1");
    rec
}

/// An unusual one of alice's after [`usual_cloudtrail`]: a first-time call, failing, from the
/// internet, with a browser, in another region.
pub fn odd_cloudtrail(id: &str) -> serde_json::Value {
    let mut rec = cloudtrail(id, "DeleteTrail", None);
    rec["sourceIPAddress"] = serde_json::json!("198.51.100.77");
    rec["userAgent"] = serde_json::json!("Mozilla/5.0 (X11; Linux x86_64)");
    rec["awsRegion"] = serde_json::json!("ap-south-1");
    rec["errorCode"] = serde_json::json!("AccessDenied");
    rec
}

/// A CloudTrail record (as [`cloudtrail`]) by `user` of another AWS `account`, as bytes.
pub fn cloudtrail_by(
    id: &str,
    name: &str,
    mfa: Option<&str>,
    account: &str,
    user: &str,
) -> Vec<u8> {
    let mut rec = cloudtrail(id, name, mfa);
    rec["recipientAccountId"] = serde_json::json!(account);
    rec["userIdentity"]["accountId"] = serde_json::json!(account);
    rec["userIdentity"]["userName"] = serde_json::json!(user);
    rec["userIdentity"]["arn"] = serde_json::json!(format!("arn:aws:iam::{account}:user/{user}"));
    serde_json::to_vec(&rec).unwrap()
}

/// A broker a test may stop and start: a port and a directory of its own.
pub struct PrivateBroker {
    dir: tempfile::TempDir,
    pub port: u16,
    /// Mosquitto settings beyond the listener (authentication).
    extra_conf: String,
}

impl PrivateBroker {
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts it (again); it stops when the guard drops.
    pub fn start(&self) -> ChildGuard {
        private_mosquitto(self.dir.path(), self.port, &self.extra_conf)
    }
}

/// The engine's account on a secured broker, as docs/operations.md sets it up.
pub const ENGINE_BROKER_USER: &str = "portcullis-engine";
/// The broker's dynamic security admin there.
pub const BROKER_ADMIN_USER: &str = "portcullis-admin";

/// Where Debian (and most builds) put Mosquitto's dynamic security plugin.
fn dynsec_plugin() -> &'static str {
    [
        "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
        "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
        "/usr/lib/mosquitto_dynamic_security.so",
        "/usr/local/lib/mosquitto_dynamic_security.so",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("Mosquitto's dynamic security plugin is installed (scripts/services up)")
}

impl TestEnv {
    /// A scratch world whose engine uses a broker of its own, started.
    pub async fn on_private_broker(tag: &str) -> (TestEnv, PrivateBroker, ChildGuard) {
        let mut env = TestEnv::new(tag).await;
        let broker = PrivateBroker {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            extra_conf: "allow_anonymous true\n".into(),
        };
        env.config.mqtt.port = broker.port;
        let running = broker.start();
        (env, broker, running)
    }

    /// A scratch world on a broker of its own that checks identities as docs/operations.md
    /// says: no anonymous clients, Mosquitto's dynamic security plugin and its admin, and the
    /// engine's account made by `portcullis broker setup`.
    pub async fn on_secured_broker(tag: &str) -> (TestEnv, PrivateBroker, ChildGuard) {
        let mut env = TestEnv::new(tag).await;
        let dir = tempfile::tempdir().unwrap();
        let dynsec = dir.path().join("dynsec.json");
        let secret = || uuid::Uuid::new_v4().simple().to_string();
        let (admin_password, engine_password) = (secret(), secret());
        let init = std::process::Command::new("mosquitto_ctrl")
            .args([
                "dynsec",
                "init",
                dynsec.to_str().unwrap(),
                BROKER_ADMIN_USER,
            ])
            .arg(&admin_password)
            .output()
            .expect("mosquitto_ctrl is installed (scripts/services up)");
        assert!(init.status.success(), "{init:?}");
        // Run as root, Mosquitto would become the `mosquitto` user, which cannot write the
        // plugin's file in our private directory: it stays who we are.
        let me = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let broker = PrivateBroker {
            port: free_port(),
            extra_conf: format!(
                "user {}\nallow_anonymous false\nplugin {}\nplugin_opt_config_file {}\n",
                String::from_utf8_lossy(&me.stdout).trim(),
                dynsec_plugin(),
                dynsec.display()
            ),
            dir,
        };
        env.config.mqtt.port = broker.port;
        env.config.mqtt.admin_username = Some(BROKER_ADMIN_USER.into());
        env.config.mqtt.admin_password = Some(admin_password);
        env.config.mqtt.username = Some(ENGINE_BROKER_USER.into());
        env.config.mqtt.password = Some(engine_password);
        let running = broker.start();
        let (code, out, err) = env.cli(&["broker", "setup"]);
        assert_eq!(code, 0, "broker setup: {out}{err}");
        (env, broker, running)
    }
}

/// A Mosquitto of the test's own on `port` (loopback; `extra_conf` says who may connect), so
/// a test can stop and restart a broker without touching the one other tests share. Stopped
/// (by its pid) when the guard drops.
pub fn private_mosquitto(dir: &Path, port: u16, extra_conf: &str) -> ChildGuard {
    let conf = dir.join(format!("mosquitto-{port}.conf"));
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\npersistence false\n{extra_conf}"),
    )
    .unwrap();
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("mosquitto is installed (scripts/services up)");
    let child = std::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start a private mosquitto");
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "private mosquitto did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ChildGuard(child)
}

/// The receipt of `decision` (a decision id), once the decision log has written it.
pub async fn receipt_of(env: &TestEnv, decision: &str) -> serde_json::Value {
    let id = uuid::Uuid::parse_str(decision).unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM receipts WHERE decision_id = $1")
                .bind(id)
                .fetch_optional(&env.pool)
                .await
                .unwrap();
        if let Some(body) = body {
            return serde_json::from_str(&body).unwrap();
        }
        assert!(Instant::now() < until, "no receipt for decision {decision}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
