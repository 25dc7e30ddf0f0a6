//! One model line's actor (a tenant's CloudTrail or device model): it computes each event's
//! features in order, keeping its principals' behaviour between them, scores them with the
//! current model, keeps its subjects' trust, says which scores are anomalies and what made them
//! so, and which training session, if any, collects the events.
//!
//! Its model, session and settings are loaded on activation and again on `Reload` (sent when a
//! session starts or ends, a model is trained or the settings change). The principals'
//! behaviour lives in memory; on activation it is warmed up on the line's recent events from the
//! store, so that after a restart or an idle hour principals are not all new again. Trust is
//! resumed from what was stored of it.

use std::sync::Arc;

use actix::fut::wrap_future;
use actix::{Actor, ActorFutureExt, AtomicResponse, Context, Handler, Message, Supervised};
use portcullis_engine::anomaly::features::{extract, BehaviourBook, RawFeatures};
use portcullis_engine::anomaly::trust::{TrustBook, TrustChange};
use portcullis_engine::anomaly::{ModelKey, UnusualFeature};
use portcullis_engine::Event;
use tracing::{info, warn};
use uuid::Uuid;

use super::store::{ModelState, ModelStore, ModelStoreError};
use crate::entity::{catch_panic, Entity, Lease, Panicked};

/// How far ahead of this engine's clock an event's time may count for trust.
const MAX_CLOCK_AHEAD_SECS: i64 = 300;

/// Features and scores for these events (all of one tenant and scope), in order. Shared, not
/// moved: the caller keeps them whatever becomes of the message, and takes them back whole once
/// it is answered.
pub struct Observe {
    pub events: Arc<Vec<Event>>,
}

/// What the model line says about one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub features: RawFeatures,
    /// The anomaly score, if a model has been trained (and could score these features).
    pub score: Option<f64>,
    /// The model version that scored it.
    pub model_version: Option<i32>,
    /// The training session that collects it.
    pub session: Option<Uuid>,
    /// Its subject's trust, 0 to 100, once it is counted (if it was scored).
    pub trust: Option<u8>,
    /// The subject's trust moved: what to store.
    pub trust_change: Option<TrustChange>,
    /// Scored at or above the line's threshold: an anomaly.
    pub anomaly: Option<Finding>,
}

/// Why an event is an anomaly.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The threshold it reached.
    pub threshold: f64,
    /// What made it unusual, most telling first.
    pub unusual: Vec<UnusualFeature>,
}

impl Message for Observe {
    /// One observation per event, in the order given.
    type Result = Result<Vec<Observation>, Panicked>;
}

/// Reads the model and session again (a session started or ended, a model was trained).
#[derive(Debug, Clone, Copy, Default)]
pub struct Reload;

impl Message for Reload {
    type Result = Result<(), ModelStoreError>;
}

pub struct ModelActor<S: ModelStore> {
    key: ModelKey,
    store: Arc<S>,
    state: ModelState,
    book: BehaviourBook,
    trust: TrustBook,
    lease: Lease,
}

impl<S: ModelStore> ModelActor<S> {
    pub fn state(&self) -> &ModelState {
        &self.state
    }
}

impl<S: ModelStore> Entity for ModelActor<S> {
    type Key = ModelKey;
    type Services = S;
    type Error = ModelStoreError;
    const KIND: &'static str = "anomaly_model";

    async fn activate(key: ModelKey, store: Arc<S>, lease: Lease) -> Result<Self, ModelStoreError> {
        let state = store.load(key.clone()).await?;
        let past = store.history(key.clone()).await?;
        let stored = store.trust(key.clone()).await?;
        let trust = TrustBook::resumed(stored.subjects, stored.counted, stored.last_seq);
        let book = tokio::task::spawn_blocking(move || BehaviourBook::warmed_up(&past))
            .await
            .map_err(|e| ModelStoreError(format!("warming up the behaviour history: {e}")))?;
        Ok(Self {
            key,
            store,
            state,
            book,
            trust,
            lease,
        })
    }
}

impl<S: ModelStore> Actor for ModelActor<S> {
    type Context = Context<Self>;
}

impl<S: ModelStore> Supervised for ModelActor<S> {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // The model and session are unchanged, and the histories and trust are kept: a panic
        // while observing leaves at most the event in hand counted in its principal's history.
        self.lease.restarting();
    }
}

impl<S: ModelStore> Handler<Observe> for ModelActor<S> {
    type Result = Result<Vec<Observation>, Panicked>;

    fn handle(&mut self, msg: Observe, ctx: &mut Context<Self>) -> Self::Result {
        let key = self.key.clone();
        let (book, trust, state) = (&mut self.book, &mut self.trust, &self.state);
        catch_panic::<Self, _>(ctx, &key, || {
            let features: Vec<RawFeatures> = msg
                .events
                .iter()
                .map(|event| extract(event, book))
                .collect();
            let scored = state.model.as_ref().and_then(|(version, model)| {
                match model.score_all(&features) {
                    Ok(scores) => Some((*version, model, scores)),
                    Err(e) => {
                        warn!(model = %key, error = %e, "cannot score these events");
                        None
                    }
                }
            });
            let settings = state.settings;
            // Trust comes back with event time, which a sender states: a time far ahead must
            // not buy it back early.
            let latest = chrono::Utc::now() + chrono::Duration::seconds(MAX_CLOCK_AHEAD_SECS);
            features
                .into_iter()
                .zip(msg.events.iter())
                .enumerate()
                .map(|(i, (features, event))| {
                    let mut seen = Observation {
                        features,
                        score: None,
                        model_version: None,
                        session: state.session,
                        trust: None,
                        trust_change: None,
                        anomaly: None,
                    };
                    if let Some((version, model, scores)) = &scored {
                        let score = scores[i];
                        let subject = key.scope.subject_of(event);
                        let (now, change) =
                            trust.observe(
                                &event.event_id,
                                subject,
                                score,
                                event.event_time.min(latest),
                                &settings,
                            );
                        seen.score = Some(score);
                        seen.model_version = Some(*version);
                        seen.trust = Some(now);
                        seen.trust_change = change;
                        if score >= settings.threshold {
                            let unusual = model.unusual(&seen.features).unwrap_or_else(|e| {
                                warn!(model = %key, error = %e, "cannot say what made this event unusual");
                                Vec::new()
                            });
                            seen.anomaly = Some(Finding {
                                threshold: settings.threshold,
                                unusual,
                            });
                        }
                    }
                    seen
                })
                .collect()
        })
    }
}

impl<S: ModelStore> Handler<Reload> for ModelActor<S> {
    type Result = AtomicResponse<Self, Result<(), ModelStoreError>>;

    fn handle(&mut self, _: Reload, _ctx: &mut Context<Self>) -> Self::Result {
        let load = self.store.load(self.key.clone());
        AtomicResponse::new(Box::pin(wrap_future(load).map(
            |loaded: Result<ModelState, ModelStoreError>, act: &mut Self, _| {
                let state = loaded?;
                info!(
                    model = %act.key,
                    version = state.model.as_ref().map(|(v, _)| *v),
                    session = ?state.session,
                    threshold = state.settings.threshold,
                    "anomaly model reloaded"
                );
                act.state = state;
                Ok(())
            },
        )))
    }
}
