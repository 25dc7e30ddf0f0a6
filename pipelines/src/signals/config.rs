//! `[signals]`: external trust signals from other security tools (docs/signals.md).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignalsConfig {
    /// Off: signals are neither taken nor given to policy.
    pub enabled: bool,
    /// The Kafka topic tools publish signals on (on `kafka.brokers`; consumed when
    /// `kafka.enabled`), read by the consumer group `{kafka.group_id}.signals`.
    pub kafka_topic: String,
    /// How often the signals that last are read again from Postgres (signals another engine
    /// took, expiries).
    pub refresh_ms: u64,
    /// Largest batch `POST /v1/signals` takes.
    pub max_batch: usize,
}

impl Default for SignalsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            kafka_topic: "portcullis-signals".into(),
            refresh_ms: 1000,
            max_batch: 1000,
        }
    }
}

impl SignalsConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.kafka_topic.is_empty() {
            p.push("signals.kafka_topic must be set".into());
        }
        if self.refresh_ms < 100 {
            p.push("signals.refresh_ms must be at least 100".into());
        }
        if self.max_batch == 0 {
            p.push("signals.max_batch must be at least 1".into());
        }
        p
    }
}
