//! Before policy: each tenant's events go to its anomaly-model actors, which compute their
//! features and scores. An enrichment, never a gate: if a model line cannot answer (its store is
//! away, its actor panicked), its events are judged without a score and say so in the log.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use futures::future::BoxFuture;
use portcullis_actors::{EntityDirectory, ModelActor, ModelStore, Observation, Observe};
use portcullis_engine::anomaly::{ModelKey, ModelScope};
use portcullis_engine::{Event, TenantId};
use tracing::warn;

/// Whoever computes events' features and scores: the anomaly-model actors.
pub trait EventObserver: Send + Sync {
    /// One observation per event, in order, or `None` if the model line could not answer.
    fn observe(
        &self,
        key: ModelKey,
        events: Arc<Vec<Event>>,
    ) -> BoxFuture<'_, Option<Vec<Observation>>>;
}

impl<S: ModelStore> EventObserver for EntityDirectory<ModelActor<S>> {
    fn observe(
        &self,
        key: ModelKey,
        events: Arc<Vec<Event>>,
    ) -> BoxFuture<'_, Option<Vec<Observation>>> {
        Box::pin(async move {
            let n = events.len();
            match self.send(&key, Observe { events }).await {
                Ok(Ok(observations)) if observations.len() == n => Some(observations),
                Ok(Ok(observations)) => {
                    warn!(model = %key, events = n, observations = observations.len(),
                          "events judged without anomaly scores: the model line answered for another number of events");
                    None
                }
                Ok(Err(panicked)) => {
                    warn!(model = %key, error = %panicked, events = n, "events judged without anomaly scores");
                    None
                }
                Err(e) => {
                    warn!(model = %key, error = %e, events = n, "events judged without anomaly scores");
                    None
                }
            }
        })
    }
}

/// One tenant's events observed, in order: the events back, and each one's observation.
pub async fn observe_tenant(
    observer: &dyn EventObserver,
    tenant: &TenantId,
    events: Vec<Event>,
) -> (Vec<Event>, Vec<Option<Observation>>) {
    let scope_of = |e: &Event| ModelScope::of(e.kind);
    let Some(first) = events.first().map(scope_of) else {
        return (events, Vec::new());
    };
    if events.iter().all(|e| scope_of(e) == first) {
        let key = ModelKey {
            tenant: tenant.clone(),
            scope: first,
        };
        return observe_one(observer, key, events).await;
    }
    // Both kinds in one batch (a replay of mixed dead letters): one call per scope, each in
    // order, then back into the batch's order.
    let n = events.len();
    let mut slots: Vec<Option<Event>> = events.into_iter().map(Some).collect();
    let mut observations: Vec<Option<Observation>> = vec![None; n];
    for scope in ModelScope::ALL {
        let at: Vec<usize> = (0..n)
            .filter(|&i| slots[i].as_ref().is_some_and(|e| scope_of(e) == scope))
            .collect();
        if at.is_empty() {
            continue;
        }
        let part: Vec<Event> = at.iter().map(|&i| slots[i].take().expect("once")).collect();
        let key = ModelKey {
            tenant: tenant.clone(),
            scope,
        };
        let (part, seen) = observe_one(observer, key, part).await;
        for ((i, event), observation) in at.into_iter().zip(part).zip(seen) {
            slots[i] = Some(event);
            observations[i] = observation;
        }
    }
    let events = slots.into_iter().map(|e| e.expect("put back")).collect();
    (events, observations)
}

async fn observe_one(
    observer: &dyn EventObserver,
    key: ModelKey,
    events: Vec<Event>,
) -> (Vec<Event>, Vec<Option<Observation>>) {
    let n = events.len();
    let shared = Arc::new(events);
    let seen = observer.observe(key, shared.clone()).await;
    // The actor has let go of its copy once it answered (or its message was dropped).
    let events = Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone());
    let observations = match seen {
        Some(seen) => seen.into_iter().map(Some).collect(),
        None => vec![None; n],
    };
    (events, observations)
}

/// A judged event whose observation leaves rows besides its decision (which has the score):
/// features for a training session, an anomaly, a trust change.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub tenant: TenantId,
    pub event_id: String,
    pub event_time: DateTime<Utc>,
    pub scope: ModelScope,
    pub subject: String,
    pub action: String,
    pub observation: Arc<Observation>,
}

impl Observed {
    /// The rows `observation` leaves for `event`, if any.
    pub fn of(event: &Event, observation: &Arc<Observation>) -> Option<Self> {
        let o = observation;
        if o.session.is_none() && o.anomaly.is_none() && o.trust_change.is_none() {
            return None;
        }
        let scope = ModelScope::of(event.kind);
        Some(Observed {
            tenant: event.tenant_id.clone(),
            event_id: event.event_id.clone(),
            event_time: event.event_time,
            scope,
            subject: scope.subject_of(event).to_owned(),
            action: event.action.clone(),
            observation: observation.clone(),
        })
    }
}
