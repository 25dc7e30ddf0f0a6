//! One TOML file with environment overrides. Every default works on loopback with no file at all.
//!
//! Precedence (later wins): built-in defaults, the TOML file, `PORTCULLIS_SECTION__KEY` variables
//! (for example `PORTCULLIS_KAFKA__BROKERS=10.0.0.5:9092`).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use crate::anomaly::AnomalyConfig;
pub use crate::api::config::HttpConfig;
pub use crate::approvals::ApprovalsConfig;
pub use crate::distribution::DistributionConfig;
pub use crate::evidence::EvidenceConfig;
pub use crate::policy_service::config::PolicyConfig;
pub use crate::protection::ProtectionConfig;
pub use crate::runtime::config::{ActorsConfig, EntityConfig};
pub use crate::signals::SignalsConfig;
pub use crate::sinks::postgres::config::PostgresConfig;
pub use crate::sources::kafka::config::KafkaConfig;
pub use crate::sources::mqtt::config::MqttConfig;
pub use crate::telemetry::config::TelemetryConfig;
pub use crate::tuning::config::TuningConfig;

/// File read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "portcullis.toml";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
/// Every setting, one section per component (each section's type lives beside its component).
pub struct Config {
    pub postgres: PostgresConfig,
    pub kafka: KafkaConfig,
    pub mqtt: MqttConfig,
    pub policy: PolicyConfig,
    pub distribution: DistributionConfig,
    pub anomaly: AnomalyConfig,
    pub evidence: EvidenceConfig,
    pub approvals: ApprovalsConfig,
    pub protection: ProtectionConfig,
    pub signals: SignalsConfig,
    pub compliance: crate::compliance::ComplianceConfig,
    pub actors: ActorsConfig,
    pub http: HttpConfig,
    pub tuning: TuningConfig,
    pub telemetry: TelemetryConfig,
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
            if self
                .kafka
                .instance_id
                .as_deref()
                .is_some_and(|i| i.trim().is_empty())
            {
                p.push("kafka.instance_id, when set, must not be empty".into());
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
        if self.http.enabled && !self.http.auth && !self.http.listens_on_loopback() {
            p.push(format!(
                "http.auth = false is allowed only on a loopback address, and http.listen is {:?}: anyone who reaches it would read and administer every tenant",
                self.http.listen
            ));
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
            ("actors.tenant.mailbox", self.actors.tenant.mailbox),
            ("actors.tenant.max_live", self.actors.tenant.max_live),
            ("kafka.max_message_bytes", self.kafka.max_message_bytes),
            ("mqtt.max_payload_bytes", self.mqtt.max_payload_bytes),
            ("mqtt.qos0_buffer_bytes", self.mqtt.qos0_buffer_bytes),
            ("http.max_body_bytes", self.http.max_body_bytes),
            ("http.decision_log_queue", self.http.decision_log_queue),
            ("http.stream_buffer", self.http.stream_buffer),
            ("actors.segment.mailbox", self.actors.segment.mailbox),
            ("actors.segment.max_live", self.actors.segment.max_live),
            (
                "distribution.resend_secs",
                self.distribution.resend_secs as usize,
            ),
            (
                "distribution.ack_timeout_secs",
                self.distribution.ack_timeout_secs as usize,
            ),
            (
                "distribution.max_policy_bytes",
                self.distribution.max_policy_bytes,
            ),
            (
                "policy.eval_timeout_ms",
                self.policy.eval_timeout_ms as usize,
            ),
        ] {
            if v == 0 {
                p.push(format!("{name} must be at least 1"));
            }
        }
        if self.tuning.decision_log_nice > 19 {
            p.push(format!(
                "tuning.decision_log_nice must be 0 to 19 (got {})",
                self.tuning.decision_log_nice
            ));
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
        p.extend(self.evidence.problems());
        p.extend(self.approvals.problems());
        p.extend(self.protection.problems());
        p.extend(self.signals.problems());
        p.extend(self.compliance.problems());
        p
    }

    /// Arbiter threads for the entity actors.
    pub fn workers(&self) -> usize {
        match self.actors.workers {
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
