//! Stage 2: each tenant's events are judged by its actor, once: tenants in parallel, each
//! tenant's events in order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use futures::future::join_all;
use portcullis_actors::{
    AnomalyContext, Judge, Observation, ProtectionBoard, SignalBoard, TenantDirectory, Verdict,
};
use portcullis_engine::anomaly::trust::FULL_TRUST;
use portcullis_engine::anomaly::ModelScope;
use portcullis_engine::protection::{event_unit_key, UnitProtection};
use portcullis_engine::signals::ActiveSignal;
use portcullis_engine::{DeadLetter, Event, Origin, TenantId};
use tracing::instrument;

use super::decode::Decoded;
use super::observe::{observe_tenant, EventObserver, Observed};
use super::{Inbound, RowSet};

/// A tenant actor stopped with a batch of events in its mailbox (its task ended: a panic that
/// escaped its guard, or shutdown): those events came back with no verdict.
#[derive(Debug, thiserror::Error)]
#[error("the actor of tenant {0} stopped before judging its events")]
pub struct ActorStopped(pub TenantId);

pub struct Judging {
    directory: Arc<TenantDirectory>,
    observer: Option<Arc<dyn EventObserver>>,
    board: Option<Arc<ProtectionBoard>>,
    signals: Option<Arc<SignalBoard>>,
    /// Given when signals are off.
    no_signals: Arc<[ActiveSignal]>,
}

/// One tenant's share of a batch: its events, the message each came from, its place among the
/// batch's decoded events, and what its anomaly model said of each.
#[derive(Default)]
struct Share {
    messages: Vec<usize>,
    positions: Vec<usize>,
    events: Vec<Event>,
    observations: Vec<Option<Arc<Observation>>>,
    protection: Vec<Option<UnitProtection>>,
    signals: Vec<Arc<[ActiveSignal]>>,
}

/// One decoded event's message, and what its anomaly model said of it.
type Seen = (usize, Option<Arc<Observation>>);

/// What the anomaly models said of a batch's decoded events, by position, kept across the
/// rounds of judging one batch: a batch judged again (an actor stopped with it) is not observed
/// again, so each principal's behaviour counts each event once.
#[derive(Default)]
pub struct Observations {
    /// Per decoded event: the message it came from, and its observation.
    seen: Option<Vec<Seen>>,
    /// Per decoded event: the message it came from, and its unit's protection (its arrival
    /// counted once, in the first round).
    protection: Option<(Vec<usize>, Vec<Option<UnitProtection>>)>,
}

impl Observations {
    /// The observations of `events` if they are the events observed before (decoding again
    /// gives the same events, unless the tenant registry changed in between).
    fn of(&self, events: &[Decoded]) -> Option<&[Seen]> {
        let seen = self.seen.as_deref()?;
        let same = seen.len() == events.len()
            && seen.iter().zip(events).all(|((m, _), d)| *m == d.message);
        same.then_some(seen)
    }

    fn protection_of(&self, events: &[Decoded]) -> Option<&[Option<UnitProtection>]> {
        let (messages, protection) = self.protection.as_ref()?;
        let same = messages.len() == events.len()
            && messages.iter().zip(events).all(|(m, d)| *m == d.message);
        same.then_some(protection.as_slice())
    }
}

impl Judging {
    pub fn new(directory: Arc<TenantDirectory>) -> Self {
        Self {
            directory,
            observer: None,
            board: None,
            signals: None,
            no_signals: Arc::from([]),
        }
    }

    /// The signals that last about `event`'s principal (CloudTrail) or agent (devices), and
    /// about its protection unit.
    fn signals_about(
        &self,
        event: &Event,
        protection: Option<&UnitProtection>,
        now: chrono::DateTime<Utc>,
    ) -> Arc<[ActiveSignal]> {
        let Some(board) = &self.signals else {
            return self.no_signals.clone();
        };
        let scope = ModelScope::of(event.kind);
        let about = board.active(
            &event.tenant_id,
            scope.subject_kind(),
            scope.subject_of(event),
            now,
        );
        board.with_unit(about, &event.tenant_id, protection.map(|p| &*p.unit), now)
    }

    /// Policy sees the external trust signals that last about each event's principal or
    /// agent, and its trust is lowered by them.
    pub fn with_signals(mut self, board: Arc<SignalBoard>) -> Self {
        self.signals = Some(board);
        self
    }

    /// Each event's arrival counts in its unit's load, and policy sees the unit's level.
    pub fn with_protection(mut self, board: Arc<ProtectionBoard>) -> Self {
        self.board = Some(board);
        self
    }

    /// Events' features and scores come from `observer` before policy sees them.
    pub fn with_observer(mut self, observer: Arc<dyn EventObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn directory(&self) -> &Arc<TenantDirectory> {
        &self.directory
    }

    /// Judges `events` into `sets` (one per message of `batch`): judged events and their
    /// decisions, or dead letters that say why not. The events of the tenants in `set_aside`
    /// (whose actor kept stopping on this batch) become dead letters unjudged.
    #[instrument(name = "judge", skip_all, fields(events = events.len()))]
    pub async fn judge(
        &self,
        batch: &[Inbound],
        events: Vec<Decoded>,
        sets: &mut [RowSet],
        set_aside: &HashSet<TenantId>,
        observations: &mut Observations,
    ) -> Result<(), ActorStopped> {
        let now = Utc::now();
        let decoded = events.len();
        let known: Option<Vec<Option<Arc<Observation>>>> = observations
            .of(&events)
            .map(|seen| seen.iter().map(|(_, o)| o.clone()).collect());
        let messages: Vec<usize> = events.iter().map(|d| d.message).collect();
        let known_protection: Option<Vec<Option<UnitProtection>>> =
            observations.protection_of(&events).map(<[_]>::to_vec);
        let mut fresh_protection: Vec<Option<UnitProtection>> = vec![None; decoded];
        let mut shares: HashMap<TenantId, Share> = HashMap::new();
        for (position, Decoded { message, event }) in events.into_iter().enumerate() {
            if set_aside.contains(&event.tenant_id) {
                let reason = format!(
                    "not judged: the actor of tenant {} stopped each time it was given this \
                     batch; re-drive it with `portcullis dlq replay` once the cause is fixed",
                    event.tenant_id
                );
                let origin = batch[message].origin.clone();
                sets[message]
                    .dead_letters
                    .push(event_dead_letter(&event, origin, reason));
                continue;
            }
            let protection = match (&known_protection, &self.board) {
                (Some(known), _) => known[position].clone(),
                (None, Some(board)) => {
                    let p = board.arrive(&event.tenant_id, &event_unit_key(&event));
                    fresh_protection[position] = p.clone();
                    p
                }
                (None, None) => None,
            };
            let about = self.signals_about(&event, protection.as_ref(), now);
            let share = shares.entry(event.tenant_id.clone()).or_default();
            share.messages.push(message);
            share.positions.push(position);
            share.signals.push(about);
            share.events.push(event);
            share.protection.push(protection);
        }
        if known_protection.is_none() && self.board.is_some() {
            observations.protection = Some((messages.clone(), fresh_protection));
        }
        // Observed once per batch, before the first round: a principal's behaviour counts each
        // event once, also when the batch is judged again.
        match (known, &self.observer) {
            (Some(known), _) => {
                for share in shares.values_mut() {
                    share.observations =
                        share.positions.iter().map(|&p| known[p].clone()).collect();
                }
            }
            (None, Some(observer)) => {
                let observing = shares.iter_mut().map(|(tenant, share)| async move {
                    let events = std::mem::take(&mut share.events);
                    let (events, seen) = observe_tenant(observer.as_ref(), tenant, events).await;
                    share.events = events;
                    share.observations = seen.into_iter().map(|o| o.map(Arc::new)).collect();
                });
                join_all(observing).await;
                let mut seen: Vec<Seen> = messages.iter().map(|&m| (m, None)).collect();
                for share in shares.values() {
                    for (&p, o) in share.positions.iter().zip(&share.observations) {
                        seen[p].1 = o.clone();
                    }
                }
                debug_assert_eq!(seen.len(), decoded);
                observations.seen = Some(seen);
            }
            (None, None) => {}
        }
        // After a panic, an actor hands back the rest of its batch unjudged and restarts; each
        // round settles at least the event that panicked, so this ends.
        while !shares.is_empty() {
            let asks = shares.drain().map(|(tenant, share)| async move {
                let mut observations = share.observations;
                observations.resize(share.events.len(), None);
                let anomaly = observations
                    .iter()
                    .map(|o| match o.as_deref() {
                        Some(Observation {
                            score: Some(score),
                            trust,
                            ..
                        }) => AnomalyContext {
                            score: *score,
                            trust: f64::from(trust.unwrap_or(FULL_TRUST)),
                        },
                        _ => AnomalyContext::default(),
                    })
                    .collect();
                let mut protection = share.protection;
                protection.resize(share.events.len(), None);
                let answer = match self.directory.addr(&tenant).await {
                    Ok(addr) => {
                        let events = share.events;
                        Ok(addr
                            .send(Judge {
                                events,
                                now,
                                anomaly,
                                protection: protection.clone(),
                                signals: share.signals,
                            })
                            .await)
                    }
                    Err(unavailable) => Err((unavailable, share.events)),
                };
                (tenant, share.messages, observations, protection, answer)
            });
            for (tenant, messages, observations, protection, answer) in join_all(asks).await {
                match answer {
                    Ok(Ok(verdicts)) => {
                        for ((((event, verdict), message), observation), protection) in verdicts
                            .into_iter()
                            .zip(messages)
                            .zip(observations)
                            .zip(protection)
                        {
                            let set = &mut sets[message];
                            match verdict {
                                Verdict::Judged(mut decision) => {
                                    decision.protection_level = protection.map(|p| p.level);
                                    if let Some(observation) = observation {
                                        decision.anomaly_score = observation.score;
                                        decision.anomaly_model_version = observation.model_version;
                                        set.observed.extend(Observed::of(&event, &observation));
                                    }
                                    set.decisions.push(decision);
                                    set.events.push(event);
                                }
                                Verdict::Refused(reason) => {
                                    set.dead_letters.push(event_dead_letter(
                                        &event,
                                        batch[message].origin.clone(),
                                        format!("policy evaluation failed: {reason}"),
                                    ))
                                }
                                Verdict::Unjudged => {
                                    let about =
                                        self.signals_about(&event, protection.as_ref(), now);
                                    let share = shares.entry(tenant.clone()).or_default();
                                    share.messages.push(message);
                                    share.events.push(event);
                                    share.observations.push(observation);
                                    share.protection.push(protection);
                                    share.signals.push(about);
                                    share.positions.push(usize::MAX);
                                }
                            }
                        }
                    }
                    Ok(Err(_mailbox)) => return Err(ActorStopped(tenant)),
                    Err((unavailable, events)) => {
                        for (event, message) in events.into_iter().zip(messages) {
                            sets[message].dead_letters.push(event_dead_letter(
                                &event,
                                batch[message].origin.clone(),
                                unavailable.to_string(),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A decoded event that could not be judged: kept whole, with the tenant named.
fn event_dead_letter(event: &Event, origin: Origin, reason: String) -> DeadLetter {
    let payload = serde_json::to_vec(&event.raw).unwrap_or_default();
    let mut d = DeadLetter::new(origin, None, &payload, reason)
        .with_tenant_hint(event.tenant_id.to_string());
    // One message may hold several events; the event id keeps their dead letters apart.
    d.id = format!("{}:event:{}", d.id, event.event_id);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_engine::anomaly::features::RawFeatures;
    use portcullis_engine::{EventKind, Source};

    fn decoded(message: usize, id: &str) -> Decoded {
        Decoded {
            message,
            event: Event {
                event_id: id.into(),
                tenant_id: TenantId::parse("acme").unwrap(),
                source: Source::Mqtt,
                kind: EventKind::Device,
                event_time: Utc::now(),
                principal: "p".into(),
                action: "a".into(),
                service: "agent".into(),
                resource: None,
                source_ip: None,
                account: "x".into(),
                raw: serde_json::json!({}),
            },
        }
    }

    #[test]
    fn a_batch_decoded_again_reuses_its_observations_and_another_does_not() {
        let observation = Arc::new(Observation {
            features: RawFeatures {
                categorical: vec![],
                numeric: vec![],
            },
            score: Some(0.6),
            model_version: Some(1),
            session: None,
            trust: Some(100),
            trust_change: None,
            anomaly: None,
        });
        let kept = Observations {
            seen: Some(vec![(0, Some(observation)), (2, None)]),
            protection: None,
        };
        let again = [decoded(0, "e1"), decoded(2, "e2")];
        assert_eq!(kept.of(&again).map(|s| s.len()), Some(2));
        // The registry changed between rounds: other events, other messages.
        assert!(kept.of(&[decoded(0, "e1")]).is_none());
        assert!(kept.of(&[decoded(1, "e1"), decoded(2, "e2")]).is_none());
        assert!(Observations::default().of(&again).is_none());
    }
}
