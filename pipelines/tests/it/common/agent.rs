//! The reference agent, the real binary, run by a test: its log, its local API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use portcullis::distribution::load_signing_key;
use portcullis_engine::distribution::encode_public_key;
use serde_json::{json, Value};

use super::{ChildGuard, TestEnv};

pub struct RunningAgent {
    _child: ChildGuard,
    log: PathBuf,
    api: std::net::SocketAddr,
}

pub fn spawn_agent(env: &TestEnv, id: &str, state: &Path) -> RunningAgent {
    spawn_agent_with(env, id, state, &[])
}

/// Starts `portcullis agent run` for acme's agent `id` (groups HR and laptops) trusting the
/// engine's key, with `extra` arguments (e.g. `--credentials`).
pub fn spawn_agent_with(env: &TestEnv, id: &str, state: &Path, extra: &[&str]) -> RunningAgent {
    let signer = load_signing_key(&env.config.distribution.signing_key_file)
        .unwrap()
        .expect("the engine made its key");
    let port = super::free_port();
    let log = state.with_extension(format!("{}.log", uuid::Uuid::new_v4().simple()));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "agent",
            "run",
            "--tenant",
            "acme",
            "--id",
            id,
            "--groups",
            "HR,laptops",
            "--state-dir",
            state.to_str().unwrap(),
            "--trust-key",
            &encode_public_key(&signer.public_key()),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(extra)
        .env(
            "PORTCULLIS_MQTT__TOPIC_PREFIX",
            &env.config.mqtt.topic_prefix,
        )
        .env("PORTCULLIS_MQTT__PORT", env.config.mqtt.port.to_string())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
        .spawn()
        .expect("start portcullis agent run");
    RunningAgent {
        _child: ChildGuard(child),
        log,
        api: ([127, 0, 0, 1], port).into(),
    }
}

impl RunningAgent {
    /// Asserts its log says it applied each of `segment`'s `versions`, in that order. (The
    /// line follows the local API's answer by a moment: it is waited for.)
    pub async fn assert_applied_in_order(
        &self,
        segment: &str,
        versions: impl IntoIterator<Item = u64>,
    ) {
        let lines: Vec<String> = versions
            .into_iter()
            .map(|n| format!("applied {segment} v{n}"))
            .collect();
        for line in &lines {
            self.wait_log(line, 1).await;
        }
        let log = self.log();
        let at: Vec<usize> = lines
            .iter()
            .map(|l| log.find(l).expect("waited for"))
            .collect();
        assert!(at.is_sorted(), "{segment} applied in order: {log}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the agent's log says `text` (`times` times).
    pub async fn wait_log(&self, text: &str, times: usize) {
        let until = Instant::now() + Duration::from_secs(20);
        while self.log().matches(text).count() < times {
            assert!(
                Instant::now() < until,
                "{text:?} not logged: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn applied(&self) -> Value {
        match super::try_http_get(self.api, "/v1/status").await {
            Some((200, body)) => serde_json::from_str::<Value>(&body).unwrap()["applied"].clone(),
            _ => Value::Null,
        }
    }

    pub async fn wait_applied(&self, segment: &str, version: u64) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let applied = self.applied().await;
            if applied[segment] == version {
                return;
            }
            assert!(
                Instant::now() < until,
                "agent did not apply {segment} v{version} within 30 s: {applied}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn decide(&self, path: &str, input: Value) -> Value {
        let (status, body) = super::request(
            self.api,
            "POST",
            &format!("/v1/data/segments/{path}"),
            &[],
            &serde_json::to_vec(&json!({ "input": input })).unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["result"].clone()
    }
}
