//! The anomaly-model actor with a store kept in memory (the Postgres one is tested on the real
//! services in `pipelines/tests/it/training.rs`): features in order with each principal's
//! behaviour, scores from the current model, the active session named, a reload that picks
//! up a newly trained model, anomalies with what made them unusual, and trust kept and resumed.

use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use portcullis_actors::{
    Arbiters, EntityDirectory, EntityLimits, ModelActor, ModelState, ModelStore, ModelStoreError,
    Observation, Observe, Reload, StoredTrust,
};
use portcullis_engine::anomaly::features::{extract, BehaviourBook, PastEvent};
use portcullis_engine::anomaly::trust::TrustState;
use portcullis_engine::anomaly::AnomalySettings;
use portcullis_engine::anomaly::{train, ForestParams, ModelKey, ModelScope};
use portcullis_engine::{Event, EventKind, Source, TenantId};
use serde_json::json;
use uuid::Uuid;

#[derive(Default)]
struct Memory {
    state: Mutex<ModelState>,
    loads: Mutex<usize>,
    past: Mutex<Vec<PastEvent>>,
    trust: Mutex<StoredTrust>,
}

impl ModelStore for Memory {
    fn load(
        &self,
        _key: ModelKey,
    ) -> impl std::future::Future<Output = Result<ModelState, ModelStoreError>> + Send + 'static
    {
        *self.loads.lock().unwrap() += 1;
        let state = self.state.lock().unwrap().clone();
        async move { Ok(state) }
    }

    fn trust(
        &self,
        _key: ModelKey,
    ) -> impl std::future::Future<Output = Result<StoredTrust, ModelStoreError>> + Send + 'static
    {
        let trust = self.trust.lock().unwrap().clone();
        async move { Ok(trust) }
    }

    fn history(
        &self,
        _key: ModelKey,
    ) -> impl std::future::Future<Output = Result<Vec<PastEvent>, ModelStoreError>> + Send + 'static
    {
        let past = self.past.lock().unwrap().clone();
        async move { Ok(past) }
    }
}

/// The observations of `events` by a model line activated on `store`.
async fn observe_once(store: &Arc<Memory>, events: Vec<Event>) -> Vec<Observation> {
    let dir: EntityDirectory<ModelActor<Memory>> = EntityDirectory::new(
        Arc::new(Arbiters::start(1)),
        store.clone(),
        EntityLimits::default(),
    );
    dir.send(
        &key(),
        Observe {
            events: Arc::new(events),
        },
    )
    .await
    .unwrap()
    .unwrap()
}

fn key() -> ModelKey {
    ModelKey {
        tenant: TenantId::parse("acme").unwrap(),
        scope: ModelScope::Device,
    }
}

fn event(i: usize, user: &str, action: &str) -> Event {
    Event {
        event_id: format!("e{i}"),
        tenant_id: TenantId::parse("acme").unwrap(),
        source: Source::Mqtt,
        kind: EventKind::Device,
        event_time: Utc.timestamp_opt(1_700_000_000 + i as i64, 0).unwrap(),
        principal: user.into(),
        action: action.into(),
        service: "agent".into(),
        resource: Some("file:/tmp/x".into()),
        source_ip: Some("10.0.0.5".into()),
        account: "laptop-1".into(),
        raw: json!({"action": action, "resource": "file:/tmp/x", "source_ip": "10.0.0.5"}),
    }
}

#[actix_rt::test]
async fn features_in_order_scores_from_the_current_model_and_the_session_named() {
    let store = Arc::new(Memory::default());
    let session = Uuid::now_v7();
    store.state.lock().unwrap().session = Some(session);
    let dir: Arc<EntityDirectory<ModelActor<Memory>>> = Arc::new(EntityDirectory::new(
        Arc::new(Arbiters::start(2)),
        store.clone(),
        EntityLimits::default(),
    ));

    // No model yet: features and the session, no score. The second "open" by alice is no
    // longer new to her; bob's first is.
    let events = vec![
        event(1, "alice", "open"),
        event(2, "alice", "open"),
        event(3, "bob", "open"),
    ];
    let seen = dir
        .send(
            &key(),
            Observe {
                events: Arc::new(events.clone()),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|o| o.score.is_none() && o.session == Some(session)));
    let new_action = |o: &portcullis_actors::Observation| o.features.numeric[1];
    assert_eq!(
        seen.iter().map(new_action).collect::<Vec<_>>(),
        [1.0, 0.0, 1.0]
    );
    // The features are the engine's, in order.
    let mut book = BehaviourBook::default();
    for (o, sent) in seen.iter().zip(&events) {
        assert_eq!(o.features, extract(sent, &mut book));
    }

    // A model is trained on a usual stretch (two users, one event a minute, mostly "open")
    // and the session ends: after a reload, events are scored by it.
    let usual_day: Vec<Event> = (0..300)
        .map(|i| {
            let mut e = event(
                i,
                ["carol", "dave"][i % 2],
                if i % 4 == 3 { "read" } else { "open" },
            );
            e.event_time = Utc.timestamp_opt(1_700_000_000 + 60 * i as i64, 0).unwrap();
            e
        })
        .collect();
    let rows: Vec<_> = {
        let mut book = BehaviourBook::default();
        usual_day.iter().map(|e| extract(e, &mut book)).collect()
    };
    let (model, _) = train(ForestParams::default(), ModelScope::Device, &rows).unwrap();
    let settings = AnomalySettings::new(0.6, 3600).unwrap();
    *store.state.lock().unwrap() = ModelState {
        model: Some((1, Arc::new(model))),
        session: None,
        settings,
    };
    dir.send(&key(), Reload).await.unwrap().unwrap();
    // The actor sees the same stretch (its principals' behaviour warms up), then one more
    // usual event and one from a user never seen doing something never seen.
    let later = |i: i64, user: &str, action: &str| {
        let mut e = event(0, user, action);
        e.event_id = format!("later-{i}");
        e.event_time = Utc
            .timestamp_opt(1_700_000_000 + 60 * (300 + i), 0)
            .unwrap();
        e
    };
    let mut events = usual_day.clone();
    events.push(later(0, "carol", "open"));
    events.push(later(1, "mallory", "wipe"));
    let seen = dir
        .send(
            &key(),
            Observe {
                events: Arc::new(events),
            },
        )
        .await
        .unwrap()
        .unwrap();
    let (usual, odd) = (&seen[300], &seen[301]);
    assert_eq!((usual.model_version, usual.session), (Some(1), None));
    let (usual_score, odd_score) = (usual.score.unwrap(), odd.score.unwrap());
    assert!(
        odd_score > usual_score + 0.1 && odd_score >= settings.threshold,
        "a new user's never-seen action {odd_score} vs {usual_score}"
    );
    // Anomalies are the events at or above the threshold, each saying what made it unusual.
    for o in &seen {
        assert_eq!(o.anomaly.is_some(), o.score.unwrap() >= 0.6, "{o:?}");
    }
    let finding = odd.anomaly.as_ref().unwrap();
    assert_eq!(finding.threshold, 0.6);
    assert!(!finding.unusual.is_empty(), "{finding:?}");
    // The agent (every event came from laptop-1) lost trust to it, and that is to be stored.
    let trust = odd.trust.unwrap();
    assert!(trust < 100, "{trust}");
    let change = odd.trust_change.as_ref().expect("trust moved");
    assert_eq!((change.subject.as_str(), change.trust), ("laptop-1", trust));
    // Changes are ordered, and only moves are told.
    let seqs: Vec<i64> = seen
        .iter()
        .filter_map(|o| o.trust_change.as_ref().map(|c| c.seq))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(*store.loads.lock().unwrap(), 2, "activation and one reload");
}

#[actix_rt::test]
async fn an_activated_line_remembers_its_principals_from_the_store() {
    let store = Arc::new(Memory::default());
    *store.past.lock().unwrap() = (0..5)
        .map(|i| PastEvent {
            principal: "alice".into(),
            time: Utc.timestamp_opt(1_700_000_000 + i, 0).unwrap(),
            action: "open".into(),
            address: Some("10.0.0.5".into()),
            client: None,
        })
        .collect();
    let seen = observe_once(
        &store,
        vec![event(10, "alice", "open"), event(11, "bob", "open")],
    )
    .await;
    // numeric[1]: new action for the principal, numeric[2]: new address.
    assert_eq!(
        &seen[0].features.numeric[1..3],
        &[0.0, 0.0],
        "alice is known"
    );
    assert_eq!(&seen[1].features.numeric[1..3], &[1.0, 1.0], "bob is not");
}

#[actix_rt::test]
async fn trust_resumes_from_the_store() {
    let store = Arc::new(Memory::default());
    let usual: Vec<Event> = (0..50).map(|i| event(i, "carol", "open")).collect();
    let rows: Vec<_> = {
        let mut book = BehaviourBook::default();
        usual.iter().map(|e| extract(e, &mut book)).collect()
    };
    let (model, _) = train(ForestParams::default(), ModelScope::Device, &rows).unwrap();
    store.state.lock().unwrap().model = Some((1, Arc::new(model)));
    *store.past.lock().unwrap() = usual
        .iter()
        .map(|e| PastEvent {
            principal: e.principal.clone(),
            time: e.event_time,
            action: e.action.clone(),
            address: e.source_ip.clone(),
            client: None,
        })
        .collect();
    // laptop-1 lost 90 % of its trust an hour (the default half-life) before the next event.
    let next = event(50, "carol", "open");
    store.trust.lock().unwrap().last_seq = 41;
    store.trust.lock().unwrap().subjects = vec![(
        "laptop-1".to_owned(),
        TrustState {
            risk: 0.9,
            as_of: next.event_time - chrono::Duration::hours(1),
        },
        41,
    )];
    let seen = observe_once(&store, vec![next]).await;
    // A usual event: half the risk is gone, trust 55, and the change comes after the stored one.
    assert!(seen[0].anomaly.is_none(), "{:?}", seen[0]);
    assert_eq!(seen[0].trust, Some(55), "{:?}", seen[0]);
    let change = seen[0].trust_change.as_ref().unwrap();
    assert_eq!((change.trust, change.seq), (55, 42));
}
