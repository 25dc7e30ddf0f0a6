//! The entity actors' counters, which the actors crate keeps, as Prometheus metrics read at
//! each scrape: `entities_live{kind}` and `entity_{activations,activation_failures,
//! passivations,restarts}_total{kind}`.

use std::sync::{Arc, Mutex};

use portcullis_actors::EntityStats;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};

pub struct EntityCollector {
    /// Kinds are added as their directories are made (tenants, then segments, ...).
    kinds: Arc<Mutex<Vec<Arc<EntityStats>>>>,
    live: IntGaugeVec,
    activations: IntCounterVec,
    activation_failures: IntCounterVec,
    passivations: IntCounterVec,
    restarts: IntCounterVec,
}

impl EntityCollector {
    pub fn new(kinds: Arc<Mutex<Vec<Arc<EntityStats>>>>) -> Self {
        let counter = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["kind"]).expect("metric")
        };
        Self {
            kinds,
            live: IntGaugeVec::new(
                Opts::new(
                    "entities_live",
                    "Entity actors alive, by kind (passivated ones still finishing included).",
                ),
                &["kind"],
            )
            .expect("metric"),
            activations: counter(
                "entity_activations_total",
                "Entity actors activated (state loaded), by kind.",
            ),
            activation_failures: counter(
                "entity_activation_failures_total",
                "Entity activations that failed (no such entity, state unusable), by kind.",
            ),
            passivations: counter(
                "entity_passivations_total",
                "Entity actors passivated (idle, or past their kind's cap), by kind.",
            ),
            restarts: counter(
                "entity_restarts_total",
                "Entity actors restarted by supervision after a panic, by kind.",
            ),
        }
    }
}

impl Collector for EntityCollector {
    fn desc(&self) -> Vec<&Desc> {
        [
            self.live.desc(),
            self.activations.desc(),
            self.activation_failures.desc(),
            self.passivations.desc(),
            self.restarts.desc(),
        ]
        .concat()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for stats in &kinds {
            let (kind, n) = (&[stats.kind()], stats.read());
            self.live.with_label_values(kind).set(n.live);
            for (counter, value) in [
                (&self.activations, n.activations),
                (&self.activation_failures, n.activation_failures),
                (&self.passivations, n.passivations),
                (&self.restarts, n.restarts),
            ] {
                let c = counter.with_label_values(kind);
                c.inc_by(value.saturating_sub(c.get()));
            }
        }
        [
            self.live.collect(),
            self.activations.collect(),
            self.activation_failures.collect(),
            self.passivations.collect(),
            self.restarts.collect(),
        ]
        .concat()
    }
}
