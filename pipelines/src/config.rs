//! One TOML file with environment overrides. Every default works on loopback with no file at all.
//!
//! Precedence (later wins): built-in defaults, the TOML file, `PORTCULLIS_SECTION__KEY` variables
//! (for example `PORTCULLIS_KAFKA__BROKERS=10.0.0.5:9092`).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use portcullis_engine::policy::Evaluator;
use serde::{Deserialize, Serialize};

/// File read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "portcullis.toml";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub postgres: PostgresConfig,
    pub kafka: KafkaConfig,
    pub mqtt: MqttConfig,
    pub policy: PolicyConfig,
    pub engine: EngineConfig,
    pub http: HttpConfig,
    pub telemetry: TelemetryConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub enabled: bool,
    /// Address of the decision API, /healthz, /readyz and /metrics. Port 0 picks a free one.
    pub listen: String,
    /// Largest decision API request body; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Decision API decisions waiting to be written to Postgres. When the log falls this far
    /// behind, queries are answered 503 rather than left unlogged.
    pub decision_log_queue: usize,
    /// Decisions buffered per decision-stream channel; a subscriber further behind is sent a
    /// `lagged` message with the number it missed.
    pub stream_buffer: usize,
    /// Time slice HTTP workers ask the kernel for, in µs (Linux 6.12+, clamped to 100–100,000):
    /// a woken worker then waits at most about this long for a core held by other work.
    /// 0 keeps the kernel's default.
    pub worker_time_slice_us: u64,
    /// When set, idle cores are held to this wake-up latency in µs while the engine runs (0:
    /// they poll rather than halt). Cuts the decision API's tail on machines whose idle cores
    /// are slow to wake, virtual machines above all, at the cost of cores that never rest; it
    /// applies to the whole machine and needs write access to /dev/cpu_dma_latency (root). Unset
    /// by default.
    pub cpu_latency_qos_us: Option<u32>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:8181".into(),
            max_body_bytes: 1024 * 1024,
            workers: 0,
            decision_log_queue: 10_000,
            stream_buffer: 1024,
            worker_time_slice_us: 100,
            cpu_latency_qos_us: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection URL. The database is created by `portcullis migrate` if it does not exist.
    pub url: String,
    /// The engine's pool; the decision API's log writer keeps one more connection of its own.
    pub max_connections: u32,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: "postgres://portcullis:portcullis@127.0.0.1:5432/portcullis".into(),
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    pub enabled: bool,
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Topic carrying CloudTrail records or CloudTrail log files.
    pub topic: String,
    pub group_id: String,
    /// Create the topic at start-up if it does not exist (convenient in development).
    pub create_topic: bool,
    pub topic_partitions: i32,
    /// Messages larger than this become dead letters.
    pub max_message_bytes: usize,
    /// Most messages judged and written in one batch.
    pub batch_max_messages: usize,
    /// A batch closes once its payloads reach this many bytes (one larger message still makes a
    /// batch of its own). With `prefetch_max_bytes`, this bounds the engine's memory.
    pub batch_max_bytes: usize,
    /// How long a batch waits to fill before it is written anyway.
    pub batch_linger_ms: u64,
    /// Batches judged and written at once (one is judged while the one before it is written).
    /// Offsets are still stored in order.
    pub max_in_flight_batches: usize,
    /// Most bytes librdkafka fetches ahead of processing (`queued.max.messages.kbytes`). When the
    /// sink is slow, consumption stops here instead of buffering the backlog in memory.
    pub prefetch_max_bytes: usize,
    /// How often librdkafka reports statistics (consumer lag for `/metrics`).
    pub statistics_interval_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            brokers: "127.0.0.1:9092".into(),
            topic: "cloudtrail".into(),
            group_id: "portcullis".into(),
            create_topic: true,
            topic_partitions: 4,
            max_message_bytes: 8 * 1024 * 1024,
            batch_max_messages: 1000,
            batch_max_bytes: 8 * 1024 * 1024,
            batch_linger_ms: 20,
            max_in_flight_batches: 2,
            prefetch_max_bytes: 32 * 1024 * 1024,
            statistics_interval_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    /// Fixed client id: with a persistent session the broker queues events while we are away.
    pub client_id: String,
    /// Agents publish on `{topic_prefix}/{tenant}/agents/{agent}/events`.
    pub topic_prefix: String,
    /// Payloads larger than this become dead letters.
    pub max_payload_bytes: usize,
    /// With several engine processes: the name of an MQTT shared subscription (`$share/{group}/…`)
    /// they all join, so the broker splits agents' events between them. Unset: one engine.
    pub shared_group: Option<String>,
    pub keep_alive_secs: u64,
    /// Most messages judged and written in one batch.
    pub batch_max_messages: usize,
    /// A batch closes once its payloads reach this many bytes.
    pub batch_max_bytes: usize,
    /// How long a batch waits to fill before it is written anyway.
    pub batch_linger_ms: u64,
    /// Payload bytes of QoS 0 messages held between the broker and their commit. QoS 0 is not
    /// paced by the broker (nothing is acknowledged), so past this budget they are dropped and
    /// counted in `portcullis_mqtt_qos0_dropped_total`. QoS 1 never is: the broker's in-flight
    /// window bounds it.
    pub qos0_buffer_bytes: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "portcullis-engine".into(),
            topic_prefix: "portcullis".into(),
            max_payload_bytes: 256 * 1024,
            shared_group: None,
            keep_alive_secs: 30,
            batch_max_messages: 500,
            batch_max_bytes: 8 * 1024 * 1024,
            batch_linger_ms: 20,
            qos0_buffer_bytes: 16 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// One directory per tenant: `{bundles_dir}/{tenant}/*.rego`, optional `data.json`, `metadata.json`.
    pub bundles_dir: PathBuf,
    /// Rule evaluated for every event, relative to the tenant package (`data.tenants.{tenant}.{rule}`).
    pub rule: String,
    /// Longest one evaluation may run before it is stopped with an error (loops, explosive
    /// comprehensions). The event becomes a dead letter; an API query gets a 500.
    pub eval_timeout_ms: u64,
    /// `dispatch` (default): regorus's VM, with the tenant rule compiled per CloudTrail event
    /// name; `vm`: the VM on the whole bundle; `interpreter`: regorus's reference interpreter.
    /// A bundle a faster evaluator cannot take falls back to a slower one (`GET /v1/bundles`).
    pub evaluator: Evaluator,
    /// Watch `bundles_dir` and activate changed bundles while running (hot reload).
    pub watch: bool,
    /// Quiet time after the last file change before a bundle is reloaded (editors write in steps).
    pub reload_debounce_ms: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            bundles_dir: "policies/tenants".into(),
            rule: "decision".into(),
            eval_timeout_ms: 100,
            evaluator: Evaluator::default(),
            watch: true,
            reload_debounce_ms: 150,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Arbiter threads for tenant actors; 0 means one per CPU core.
    pub workers: usize,
    /// Mailbox capacity of each tenant actor.
    pub tenant_mailbox: usize,
    /// How often the tenant registry (tenants, accounts) is re-read from Postgres.
    pub registry_refresh_secs: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            tenant_mailbox: 64,
            registry_refresh_secs: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log filter in `RUST_LOG` syntax. `RUST_LOG` itself, when set, wins.
    pub log: String,
    /// OTLP/gRPC endpoint for traces (e.g. `http://127.0.0.1:4317`); none means no export.
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log: "info,sqlx=warn".into(),
            otlp_endpoint: None,
            service_name: "portcullis".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    #[error("{0}")]
    Invalid(Box<figment::Error>),
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Rejected(Vec<String>),
}

impl Config {
    /// Loads defaults, then `path` (or `portcullis.toml` if present), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(p) if !p.exists() => return Err(ConfigError::Missing(p.to_owned())),
            Some(p) => fig = fig.merge(Toml::file_exact(p)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                fig = fig.merge(Toml::file_exact(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        let config: Config = fig
            .merge(Env::prefixed("PORTCULLIS_").split("__"))
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Rejected(problems))
        }
    }

    /// Everything wrong with this configuration, in words an operator can act on.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.postgres.url.starts_with("postgres://")
            && !self.postgres.url.starts_with("postgresql://")
        {
            p.push(format!(
                "postgres.url must start with postgres:// (got {:?})",
                self.postgres.url
            ));
        }
        if self.postgres.max_connections == 0 {
            p.push("postgres.max_connections must be at least 1".into());
        }
        if self.kafka.enabled {
            if self.kafka.brokers.trim().is_empty() {
                p.push("kafka.brokers is empty".into());
            }
            if self.kafka.topic.is_empty() || self.kafka.group_id.is_empty() {
                p.push("kafka.topic and kafka.group_id must be set".into());
            }
            if self.kafka.topic_partitions < 1 {
                p.push("kafka.topic_partitions must be at least 1".into());
            }
        }
        if self.mqtt.enabled {
            if self.mqtt.client_id.is_empty() {
                p.push("mqtt.client_id must be set (a persistent session needs a fixed id)".into());
            }
            if let Some(g) = &self.mqtt.shared_group {
                if g.is_empty() || g.contains(['/', '+', '#']) {
                    p.push(format!(
                        "mqtt.shared_group {g:?} must be non-empty, without '/', '+' or '#'"
                    ));
                }
            }
            let prefix = &self.mqtt.topic_prefix;
            if prefix.is_empty() || prefix.contains(['+', '#']) || prefix.ends_with('/') {
                p.push(format!("mqtt.topic_prefix {prefix:?} must be non-empty, without wildcards or a trailing '/'"));
            }
        }
        for (name, v) in [
            ("kafka.batch_max_messages", self.kafka.batch_max_messages),
            ("mqtt.batch_max_messages", self.mqtt.batch_max_messages),
            ("kafka.batch_max_bytes", self.kafka.batch_max_bytes),
            (
                "kafka.max_in_flight_batches",
                self.kafka.max_in_flight_batches,
            ),
            ("mqtt.batch_max_bytes", self.mqtt.batch_max_bytes),
            ("engine.tenant_mailbox", self.engine.tenant_mailbox),
            ("kafka.max_message_bytes", self.kafka.max_message_bytes),
            ("mqtt.max_payload_bytes", self.mqtt.max_payload_bytes),
            ("mqtt.qos0_buffer_bytes", self.mqtt.qos0_buffer_bytes),
            ("http.max_body_bytes", self.http.max_body_bytes),
            ("http.decision_log_queue", self.http.decision_log_queue),
            ("http.stream_buffer", self.http.stream_buffer),
            (
                "policy.eval_timeout_ms",
                self.policy.eval_timeout_ms as usize,
            ),
        ] {
            if v == 0 {
                p.push(format!("{name} must be at least 1"));
            }
        }
        if self.http.enabled && self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!(
                "http.listen {:?} must be an address such as 127.0.0.1:8181",
                self.http.listen
            ));
        }
        let rule_ok = !self.policy.rule.is_empty()
            && self.policy.rule.split('.').all(|s| {
                s.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !rule_ok {
            p.push(format!(
                "policy.rule {:?} must be dot-separated identifiers, e.g. \"decision\"",
                self.policy.rule
            ));
        }
        p
    }

    pub fn workers(&self) -> usize {
        match self.engine.workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_point_at_loopback() {
        let c = Config::default();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert!(c.kafka.brokers.starts_with("127.0.0.1"));
        assert_eq!(c.mqtt.host, "127.0.0.1");
        assert!(c.postgres.url.contains("127.0.0.1"));
    }

    #[test]
    fn the_example_file_documents_exactly_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../portcullis.example.toml");
        let loaded = Config::load(Some(&example)).unwrap();
        let show = |c: &Config| toml::to_string(c).unwrap();
        assert_eq!(show(&loaded), show(&Config::default()));
    }

    #[test]
    fn file_then_env_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "p.toml",
                "[kafka]\ntopic = \"ct\"\nbrokers = \"file:9092\"\n",
            )?;
            jail.set_env("PORTCULLIS_KAFKA__BROKERS", "env:9092");
            jail.set_env("PORTCULLIS_MQTT__PORT", "1884");
            let c = Config::load(Some(Path::new("p.toml"))).unwrap();
            assert_eq!(c.kafka.topic, "ct");
            assert_eq!(c.kafka.brokers, "env:9092");
            assert_eq!(c.mqtt.port, 1884);
            assert_eq!(
                c.kafka.group_id, "portcullis",
                "untouched keys keep defaults"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_missing_files_and_bad_values_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[kafka]\ntopik = \"x\"\n")?;
            let err = Config::load(Some(Path::new("typo.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("topik"), "{err}");
            assert!(matches!(
                Config::load(Some(Path::new("nope.toml"))),
                Err(ConfigError::Missing(_))
            ));
            jail.create_file(
                "bad.toml",
                "[mqtt]\ntopic_prefix = \"a/#\"\n[policy]\nrule = \"../x\"\n",
            )?;
            let err = Config::load(Some(Path::new("bad.toml")))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("mqtt.topic_prefix") && err.contains("policy.rule"),
                "{err}"
            );
            Ok(())
        });
    }
}
