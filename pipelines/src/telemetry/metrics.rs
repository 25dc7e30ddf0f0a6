//! Prometheus metrics, served at `/metrics`. Names follow Vector's component metrics where one
//! exists, prefixed `portcullis_`.

use std::sync::{Arc, Mutex};

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// The entity kinds whose counters are published (see `register_entities`).
    entity_kinds: Arc<Mutex<Vec<Arc<portcullis_actors::EntityStats>>>>,
    /// Messages taken from a source (before decoding), by source.
    pub received_messages: IntCounterVec,
    /// Messages whose rows were all committed (and which were then acknowledged), by source.
    pub messages_committed: IntCounterVec,
    /// Events judged and committed, by source and tenant (a redelivered event counts again).
    pub events: IntCounterVec,
    /// New event rows stored (redelivered duplicates excluded).
    pub events_stored: IntCounter,
    /// Decisions made, by tenant and outcome.
    pub decisions: IntCounterVec,
    /// Dead letters written, by source. (Not by tenant: a dead letter's tenant is unverified input.)
    pub dead_letters: IntCounterVec,
    /// Batches that failed and were retried.
    pub batch_retries: IntCounter,
    /// Messages per committed batch, by source.
    pub batch_messages: HistogramVec,
    /// Time to write one batch to Postgres.
    pub write_seconds: Histogram,
    /// From a message's arrival to the commit of its rows, by source.
    pub end_to_end_seconds: HistogramVec,
    /// Messages between this consumer's position and the end of each assigned partition.
    pub kafka_consumer_lag: IntGaugeVec,
    /// Partitions this consumer owns since the last rebalance.
    pub kafka_assigned_partitions: IntGauge,
    /// QoS 0 MQTT messages dropped because `mqtt.qos0_buffer_bytes` was full.
    pub mqtt_qos0_dropped: IntCounter,
    /// Verdicts not published to agents because `distribution.decisions_queue` was full.
    pub agent_decisions_dropped: IntCounter,
    /// Bundles that became a tenant's serving policy, by tenant.
    pub bundle_activations: IntCounterVec,
    /// Bundles refused (syntax error, wrong package, bad JSON, ...), by tenant.
    pub bundle_rejections: IntCounterVec,
    /// 1 while a tenant's newest bundle is the one serving; 0 after a refused one.
    pub bundle_healthy: IntGaugeVec,
    /// Decision API queries answered, by tenant and status (`defined`, `undefined`, `error`).
    pub api_decisions: IntCounterVec,
    /// Decision API decisions written to `api_decisions`.
    pub api_decisions_logged: IntCounter,
    /// Decision API decisions Postgres refused to store (each logged as an error).
    pub api_decision_log_refused: IntCounter,
    /// Time to answer a decision API query, from request to response body (excluding network).
    pub api_seconds: Histogram,
    /// Open WebSocket decision-stream connections.
    pub stream_subscribers: IntGauge,
    /// Decisions skipped for decision-stream subscribers too slow to keep up (each was told).
    pub stream_lagged_messages: IntCounter,
    /// Receipt-log checkpoints signed, by tenant.
    pub checkpoints_signed: IntCounterVec,
    /// Checkpoints not signed because a tenant's log was altered, by tenant (each logged as an
    /// error; alert on any).
    pub checkpoints_refused: IntCounterVec,
    /// Approval requests opened, approved, denied and expired, by tenant.
    pub approvals: IntCounterVec,
    /// Trust signals taken (`accepted`) or refused, by how they came (`kafka`, `http`).
    pub signals: IntCounterVec,
    /// Compliance findings committed, by tenant, pack, control, severity and whether the call
    /// succeeded (alert on changes; count failed attempts).
    pub compliance_findings: IntCounterVec,
    /// Remediation results read: `finished` an action, `ignored` (a redelivery), `refused`
    /// (a dead letter).
    pub remediation_results: IntCounterVec,
}

const SOURCE: &[&str] = &["source"];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("portcullis".into()), None).expect("registry");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            registered(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("metric"),
            )
        };
        let received_messages = counter(
            "component_received_messages_total",
            "Messages taken from a source.",
            SOURCE,
        );
        let messages_committed = counter(
            "messages_committed_total",
            "Messages whose rows were all committed, then acknowledged to their source.",
            SOURCE,
        );
        let events = counter(
            "events_total",
            "Events judged and committed.",
            &["source", "tenant"],
        );
        let events_stored = registered(
            &registry,
            IntCounter::new("events_stored_total", "New event rows stored.").expect("metric"),
        );
        let decisions = counter(
            "decisions_total",
            "Policy decisions made.",
            &["tenant", "outcome"],
        );
        let dead_letters = counter("dead_letters_total", "Dead letters written.", SOURCE);
        let batch_retries = registered(
            &registry,
            IntCounter::new("batch_retries_total", "Batches retried after a failure.")
                .expect("metric"),
        );
        let batch_messages = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new("batch_messages", "Messages per committed batch.").buckets(
                    vec![1.0, 5.0, 20.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0],
                ),
                SOURCE,
            )
            .expect("metric"),
        );
        let write_seconds = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "postgres_write_seconds",
                    "Time to write one batch to Postgres.",
                )
                .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14).expect("buckets")),
            )
            .expect("metric"),
        );
        let end_to_end_seconds = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "end_to_end_seconds",
                    "From a message's arrival to the commit of its rows.",
                )
                .buckets(prometheus::exponential_buckets(0.001, 2.0, 14).expect("buckets")),
                SOURCE,
            )
            .expect("metric"),
        );
        let kafka_consumer_lag = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "kafka_consumer_lag",
                    "Messages behind the end of each assigned partition.",
                ),
                &["topic", "partition"],
            )
            .expect("metric"),
        );
        let kafka_assigned_partitions = registered(
            &registry,
            IntGauge::new(
                "kafka_assigned_partitions",
                "Partitions assigned to this consumer since the last rebalance.",
            )
            .expect("metric"),
        );
        let mqtt_qos0_dropped = registered(&registry, IntCounter::new(
            "mqtt_qos0_dropped_total",
            "QoS 0 MQTT messages dropped because the QoS 0 buffer (mqtt.qos0_buffer_bytes) was full.",
        ).expect("metric"));
        let agent_decisions_dropped = registered(&registry, IntCounter::new(
            "agent_decisions_dropped_total",
            "Verdicts on agents' events not published back to them because distribution.decisions_queue was full (Postgres has them).",
        ).expect("metric"));
        let tenant = &["tenant"];
        let bundle_activations = counter(
            "bundle_activations_total",
            "Policy bundles that became a tenant's serving policy.",
            tenant,
        );
        let bundle_rejections = counter(
            "bundle_rejections_total",
            "Policy bundles refused; the previous revision, if any, keeps serving.",
            tenant,
        );
        let bundle_healthy = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "bundle_healthy",
                    "1 while the tenant's newest bundle is serving, 0 after a refused one.",
                ),
                tenant,
            )
            .expect("metric"),
        );
        let api_decisions = counter(
            "api_decisions_total",
            "Decision API and gateway queries answered.",
            &["tenant", "status"],
        );
        let api_decisions_logged = registered(
            &registry,
            IntCounter::new(
                "api_decisions_logged_total",
                "Decision API decisions written to the decision log.",
            )
            .expect("metric"),
        );
        let api_decision_log_refused = registered(
            &registry,
            IntCounter::new(
                "api_decision_log_refused_total",
                "Decision API decisions Postgres refused to store (each is logged as an error).",
            )
            .expect("metric"),
        );
        let api_seconds = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "api_decision_seconds",
                    "Time to answer a decision API query inside the engine.",
                )
                .buckets(prometheus::exponential_buckets(0.000_025, 2.0, 14).expect("buckets")),
            )
            .expect("metric"),
        );
        let stream_subscribers = registered(
            &registry,
            IntGauge::new(
                "stream_subscribers",
                "Open WebSocket decision-stream connections.",
            )
            .expect("metric"),
        );
        let stream_lagged_messages = registered(
            &registry,
            IntCounter::new(
                "stream_lagged_messages_total",
                "Decisions skipped for slow stream subscribers (each was told).",
            )
            .expect("metric"),
        );
        let checkpoints_signed = counter(
            "receipt_checkpoints_signed_total",
            "Receipt-log checkpoints signed.",
            &["tenant"],
        );
        let checkpoints_refused = counter(
            "receipt_checkpoints_refused_total",
            "Checkpoints not signed because the tenant's receipt log was altered (alert on any).",
            &["tenant"],
        );
        let approvals = counter(
            "approvals_total",
            "Approval requests opened, approved, denied and expired.",
            &["tenant", "status"],
        );
        let signals = counter(
            "trust_signals_total",
            "Trust signals taken or refused, by how they came.",
            &["via", "outcome"],
        );
        let compliance_findings = counter(
            "compliance_findings_total",
            "Compliance findings committed: a pack's control fired on a CloudTrail event.",
            &["tenant", "pack", "control", "severity", "call"],
        );
        let remediation_results = counter(
            "remediation_results_total",
            "Remediation results read from executors, by what became of them.",
            &["outcome"],
        );
        // Resident memory, CPU and file descriptors of this process.
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("register");
        let entity_kinds = Arc::new(Mutex::new(Vec::new()));
        registry
            .register(Box::new(super::entities::EntityCollector::new(
                entity_kinds.clone(),
            )))
            .expect("entity metrics are registered once");
        Self {
            registry,
            entity_kinds,
            received_messages,
            messages_committed,
            events,
            events_stored,
            decisions,
            dead_letters,
            batch_retries,
            batch_messages,
            write_seconds,
            end_to_end_seconds,
            kafka_consumer_lag,
            kafka_assigned_partitions,
            mqtt_qos0_dropped,
            agent_decisions_dropped,
            bundle_activations,
            bundle_rejections,
            bundle_healthy,
            api_decisions,
            api_decisions_logged,
            api_decision_log_refused,
            api_seconds,
            stream_subscribers,
            stream_lagged_messages,
            checkpoints_signed,
            checkpoints_refused,
            approvals,
            signals,
            compliance_findings,
            remediation_results,
        }
    }

    /// Publishes the counters of these kinds of entity actors (each kind once, as its
    /// directory is made).
    pub fn register_entities(&self, kinds: Vec<Arc<portcullis_actors::EntityStats>>) {
        self.entity_kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(kinds);
    }

    /// A kind of entity's counters, once its directory is made (benchmarks read them).
    pub fn entity_counts(&self, kind: &str) -> Option<portcullis_actors::EntityCounts> {
        self.entity_kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|k| k.kind() == kind)
            .map(|k| k.read())
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

/// Registers `c` and returns it (collectors are handles: the clone and `c` are one metric).
fn registered<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry.register(Box::new(c.clone())).expect("register");
    c
}

/// The sum of a counter over the label sets that match every `(label, value)` in `filter`.
pub fn sum(counter: &IntCounterVec, filter: &[(&str, &str)]) -> u64 {
    counter
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .filter(|m| {
            filter.iter().all(|(name, value)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *name && l.value() == *value)
            })
        })
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prefixed_labelled_metrics() {
        let m = Metrics::new();
        m.events.with_label_values(&["kafka", "acme"]).inc_by(3);
        m.dead_letters.with_label_values(&["mqtt"]).inc();
        m.write_seconds.observe(0.002);
        let text = m.render();
        assert!(
            text.contains(r#"portcullis_events_total{source="kafka",tenant="acme"} 3"#),
            "{text}"
        );
        assert!(text.contains(r#"portcullis_dead_letters_total{source="mqtt"} 1"#));
        assert!(text.contains("portcullis_postgres_write_seconds_count 1"));
        m.decisions.with_label_values(&["acme", "deny"]).inc_by(2);
        m.decisions.with_label_values(&["globex", "deny"]).inc();
        m.decisions.with_label_values(&["acme", "allow"]).inc_by(5);
        assert_eq!(sum(&m.decisions, &[("outcome", "deny")]), 3);
        assert_eq!(sum(&m.decisions, &[]), 8);
        assert_eq!(
            sum(&m.decisions, &[("tenant", "acme"), ("outcome", "allow")]),
            5
        );
        assert_eq!(sum(&m.events, &[("tenant", "initech")]), 0);
        assert!(
            text.contains("process_resident_memory_bytes"),
            "process metrics are exported"
        );
    }
}
