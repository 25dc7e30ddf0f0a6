//! The live decision stream: every decision (decision API and event streams, after commit) is
//! fanned out to WebSocket subscribers, all of them or one tenant's.
//!
//! One broadcast channel for everything and one per subscribed tenant, so a slow subscriber's
//! `lagged` count is exactly the messages *it* missed. Messages are serialized once, and only
//! when someone listens.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, SecondsFormat, Utc};
use portcullis_engine::policy::event_document;
use portcullis_engine::TenantId;
use serde_json::{json, Value as Json};
use tokio::sync::broadcast;

use crate::path::{AfterCommit, RowSet};

/// A decision as streamed: seed 001's `DecisionEvent`, plus where it came from.
#[derive(Debug, Clone)]
pub struct StreamedDecision<'a> {
    /// The event judged; for a decision API query, its decision id.
    pub event_id: &'a str,
    pub decision_id: uuid::Uuid,
    pub tenant: &'a TenantId,
    pub decided_at: DateTime<Utc>,
    /// `api`, `kafka` or `mqtt`.
    pub source: &'a str,
    pub path: &'a str,
    pub revision: &'a str,
    pub result: Option<&'a Json>,
    /// The input, with the tenant's decision-log mask applied.
    pub input: Option<&'a Json>,
    pub eval_micros: u64,
}

impl StreamedDecision<'_> {
    pub(crate) fn to_message(&self) -> String {
        json!({
            "type": "decision",
            "data": {
                "event_id": self.event_id,
                "decision_id": self.decision_id,
                "tenant_id": self.tenant,
                "timestamp": self.decided_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                "source": self.source,
                "path": self.path,
                "bundle_revision": self.revision,
                "decision": self.result,
                "input": self.input,
                "metrics": {"eval_duration_micros": self.eval_micros},
            }
        })
        .to_string()
    }
}

pub type Message = Arc<str>;

pub struct DecisionBus {
    capacity: usize,
    all: broadcast::Sender<Message>,
    by_tenant: RwLock<HashMap<TenantId, broadcast::Sender<Message>>>,
}

impl DecisionBus {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            all: broadcast::channel(capacity).0,
            by_tenant: RwLock::default(),
        }
    }

    /// Whether anyone listens to `tenant`'s decisions (so building a message is worth it).
    pub fn wants(&self, tenant: &TenantId) -> bool {
        self.all.receiver_count() > 0
            || self
                .by_tenant
                .read()
                .map(|m| m.get(tenant).is_some_and(|s| s.receiver_count() > 0))
                .unwrap_or(false)
    }

    /// Whether anyone listens at all.
    pub fn has_subscribers(&self) -> bool {
        self.all.receiver_count() > 0
            || self
                .by_tenant
                .read()
                .map(|m| m.values().any(|s| s.receiver_count() > 0))
                .unwrap_or(false)
    }

    pub fn publish(&self, d: &StreamedDecision<'_>) {
        if let Some(message) = self.prepare(d) {
            self.send(d.tenant, message);
        }
    }

    /// The message for `d`, if anyone listens to its tenant; send it with [`Self::send`].
    pub fn prepare(&self, d: &StreamedDecision<'_>) -> Option<Message> {
        self.wants(d.tenant).then(|| d.to_message().into())
    }

    pub fn send(&self, tenant: &TenantId, message: Message) {
        // An error only means nobody listens on that channel any more.
        let _ = self.all.send(message.clone());
        if let Ok(m) = self.by_tenant.read() {
            if let Some(s) = m.get(tenant) {
                let _ = s.send(message);
            }
        }
    }

    /// A subscription to everything (`None`) or to one tenant's decisions.
    pub fn subscribe(&self, tenant: Option<&TenantId>) -> broadcast::Receiver<Message> {
        let Some(tenant) = tenant else {
            return self.all.subscribe();
        };
        let mut m = self.by_tenant.write().unwrap_or_else(|p| p.into_inner());
        // Forget channels nobody listens to any more, so that subscribing to many tenant ids
        // over time cannot grow the map without bound.
        m.retain(|_, s| s.receiver_count() > 0);
        m.entry(tenant.clone())
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }
}

/// Committed event decisions are shown to decision-stream subscribers. A batch redelivered
/// after a crash is shown again: the stream is at least once; `decision_id` tells repeats apart.
impl AfterCommit for DecisionBus {
    fn committed(&self, sets: &[RowSet]) {
        if !self.has_subscribers() {
            return;
        }
        for set in sets {
            for (event, d) in set.events.iter().zip(&set.decisions) {
                if !self.wants(&d.tenant_id) {
                    continue;
                }
                // Masked already, by the bundle that judged it (TenantActor).
                let input = event_document(event);
                let streamed = StreamedDecision {
                    event_id: &event.event_id,
                    decision_id: d.decision_id,
                    tenant: &d.tenant_id,
                    decided_at: Utc::now(),
                    source: event.source.as_str(),
                    path: &d.rule_path,
                    revision: &d.bundle_revision,
                    result: Some(&d.result).filter(|r| !r.is_null()),
                    input: Some(&input),
                    eval_micros: d.eval_micros,
                };
                // `wants` was asked above: send directly rather than through `publish`, which
                // would ask again.
                self.send(&d.tenant_id, streamed.to_message().into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision<'a>(tenant: &'a TenantId, id: &'a str) -> StreamedDecision<'a> {
        StreamedDecision {
            event_id: id,
            decision_id: uuid::Uuid::nil(),
            tenant,
            decided_at: Utc::now(),
            source: "api",
            path: "data.tenants.x.allow",
            revision: "r1",
            result: None,
            input: None,
            eval_micros: 3,
        }
    }

    #[tokio::test]
    async fn subscribers_get_their_tenant_or_everything_and_lag_is_counted_per_subscription() {
        let bus = DecisionBus::new(2);
        let (acme, globex) = (
            TenantId::parse("acme").unwrap(),
            TenantId::parse("globex").unwrap(),
        );
        assert!(!bus.has_subscribers());
        bus.publish(&decision(&acme, "nobody-listens"));
        let mut all = bus.subscribe(None);
        let mut only_acme = bus.subscribe(Some(&acme));
        assert!(bus.wants(&globex) && bus.has_subscribers());
        bus.publish(&decision(&globex, "g1"));
        bus.publish(&decision(&acme, "a1"));
        let first: Json = serde_json::from_str(&all.recv().await.unwrap()).unwrap();
        assert_eq!(first["data"]["event_id"], "g1");
        let mine: Json = serde_json::from_str(&only_acme.recv().await.unwrap()).unwrap();
        assert_eq!(mine["data"]["event_id"], "a1");
        assert_eq!(mine["type"], "decision");
        assert_eq!(mine["data"]["metrics"]["eval_duration_micros"], 3);
        // Three more acme decisions into a buffer of two: the acme subscriber missed exactly one.
        for id in ["a2", "a3", "a4"] {
            bus.publish(&decision(&acme, id));
        }
        assert!(matches!(
            only_acme.recv().await,
            Err(broadcast::error::RecvError::Lagged(1))
        ));
        drop(only_acme);
        let _other = bus.subscribe(Some(&globex));
        assert_eq!(
            bus.by_tenant.read().unwrap().len(),
            1,
            "acme's idle channel is gone"
        );
    }
}
