//! `[kafka]`: the CloudTrail source.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    pub enabled: bool,
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Topic carrying CloudTrail records or CloudTrail log files.
    pub topic: String,
    pub group_id: String,
    /// Static membership (`group.instance.id`): a stable name for this process within its
    /// group, e.g. its host or pod name. A member restarted under the same name takes back its
    /// partitions at once, instead of after the session timeout of the one that died. Give
    /// every process its own. Unset: dynamic membership.
    pub instance_id: Option<String>,
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
            instance_id: None,
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
