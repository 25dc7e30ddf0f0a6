//! Tenant actors and the policy store inside a real actix system: judging, isolation of
//! failures, reloads, the decision API's query path and its slow lane.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use portcullis_actors::{
    answer_query, Activation, ActivationObserver, Arbiters, BundleSource, EntityLimits, Judge,
    LoadError, PolicyStore, PolicyUnavailable, Query, QueryError, SlowLane, TenantDirectory,
    Verdict, LIMIT_STOPS_PER_BATCH,
};
use portcullis_engine::policy::RulePath;
use portcullis_engine::PolicyError;
use portcullis_engine::{Bundle, Event, EventKind, Source, TenantId};
use serde_json::json;

#[derive(Default)]
struct MemorySource {
    bundles: Mutex<HashMap<String, String>>,
    masks: Mutex<HashMap<String, Vec<String>>>,
    /// The revision a tenant's metadata.json would declare; none: the digest stands in.
    revisions: Mutex<HashMap<String, String>>,
    loads: AtomicUsize,
}

impl MemorySource {
    fn with(self, tenant: &str, src: &str) -> Self {
        self.put(tenant, src);
        self
    }

    /// Replaces `tenant`'s bundle (what an edit on disk would do).
    fn put(&self, tenant: &str, src: &str) {
        self.bundles
            .lock()
            .unwrap()
            .insert(tenant.into(), src.into());
    }

    /// Sets the revision `tenant`'s metadata.json declares.
    fn set_revision(&self, tenant: &str, revision: &str) {
        self.revisions
            .lock()
            .unwrap()
            .insert(tenant.into(), revision.into());
    }
}

impl BundleSource for MemorySource {
    fn load(&self, tenant: &TenantId) -> Result<Bundle, LoadError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        assert_ne!(tenant.as_str(), "explodes", "a bundle source that panics");
        if tenant.as_str() == "slow" {
            std::thread::sleep(std::time::Duration::from_millis(400));
        }
        let src = self.bundles.lock().unwrap().get(tenant.as_str()).cloned();
        let src = src.ok_or_else(|| LoadError::NotFound(tenant.to_string()))?;
        Ok(Bundle {
            tenant: tenant.clone(),
            modules: vec![("p.rego".into(), src)],
            data: None,
            revision: self.revisions.lock().unwrap().get(tenant.as_str()).cloned(),
            mask: self
                .masks
                .lock()
                .unwrap()
                .get(tenant.as_str())
                .cloned()
                .unwrap_or_default(),
            packs: Vec::new(),
        })
    }
}

fn event(tenant: &str, id: &str, action: &str) -> Event {
    Event {
        event_id: id.into(),
        tenant_id: TenantId::parse(tenant).unwrap(),
        source: Source::Kafka,
        kind: EventKind::Cloudtrail,
        event_time: Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap(),
        principal: "p".into(),
        action: action.into(),
        service: "s".into(),
        resource: None,
        source_ip: None,
        account: "1".into(),
        raw: json!({}),
    }
}

const ALLOW_READS: &str =
    "package tenants.acme\nimport rego.v1\ndecision := {\"allow\": input.event.action == \"read\"}";

/// A directory of tenant actors on `arbiters` threads, over `store`.
fn directory(arbiters: usize, store: Arc<PolicyStore>) -> TenantDirectory {
    TenantDirectory::new(
        Arc::new(Arbiters::start(arbiters)),
        store,
        EntityLimits::default(),
    )
}

fn store(source: Arc<MemorySource>) -> Arc<PolicyStore> {
    Arc::new(PolicyStore::new(source, "decision"))
}

/// Judges `events` with `tenant`'s actor.
async fn judge(dir: &TenantDirectory, tenant: &str, events: Vec<Event>) -> Vec<(Event, Verdict)> {
    dir.send(
        &TenantId::parse(tenant).unwrap(),
        Judge {
            events,
            now: Utc::now(),
            anomaly: Vec::new(),
            protection: Vec::new(),
            signals: Vec::new(),
        },
    )
    .await
    .unwrap()
}

fn decision(verdict: &Verdict) -> &portcullis_engine::Decision {
    match verdict {
        Verdict::Judged(d) => d,
        other => panic!("not judged: {other:?}"),
    }
}

#[actix_rt::test]
async fn evaluates_in_order_and_each_tenant_only_with_its_own_policy() {
    let source = Arc::new(MemorySource::default().with("acme", ALLOW_READS).with(
        "globex",
        "package tenants.globex\nimport rego.v1\ndecision := true",
    ));
    let dir = directory(2, store(source.clone()));
    let events = vec![event("acme", "1", "read"), event("acme", "2", "write")];
    let verdicts: Vec<(String, bool)> = judge(&dir, "acme", events)
        .await
        .iter()
        .map(|(_, v)| (decision(v).event_id.clone(), decision(v).allowed))
        .collect();
    assert_eq!(verdicts, vec![("1".into(), true), ("2".into(), false)]);

    let (e, v) = judge(&dir, "globex", vec![event("globex", "3", "write")])
        .await
        .remove(0);
    assert_eq!(e.event_id, "3");
    assert!(decision(&v).allowed);
    assert_eq!(decision(&v).rule_path, "data.tenants.globex.decision");
    assert_eq!(dir.live(), 2);
    // Activation happens once per tenant, not per message.
    dir.addr(&TenantId::parse("acme").unwrap()).await.unwrap();
    assert_eq!(source.loads.load(Ordering::SeqCst), 2);
    assert_eq!(dir.stats().read().activations, 2);
}

#[actix_rt::test]
async fn a_tenant_without_a_usable_bundle_is_an_error_and_is_not_retried_per_event() {
    let source =
        Arc::new(MemorySource::default().with("broken", "package tenants.broken\ndecision := {"));
    let dir = directory(1, store(source.clone()));
    let missing = dir
        .addr(&TenantId::parse("nobody").unwrap())
        .await
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("no policy bundle for tenant nobody"),
        "{missing}"
    );
    let broken = TenantId::parse("broken").unwrap();
    let err = dir.addr(&broken).await.unwrap_err().to_string();
    assert!(err.contains("p.rego"), "{err}");
    dir.addr(&broken).await.unwrap_err();
    assert_eq!(
        source.loads.load(Ordering::SeqCst),
        2,
        "failed activation is cached briefly"
    );
    assert_eq!(dir.live(), 0);
    assert_eq!(dir.stats().read().activation_failures, 3);
}

#[actix_rt::test]
async fn a_first_activation_loads_once_and_does_not_hold_up_other_tenants() {
    let slow_src = ALLOW_READS.replace("tenants.acme", "tenants.slow");
    let source = Arc::new(
        MemorySource::default()
            .with("slow", &slow_src)
            .with("acme", ALLOW_READS),
    );
    let dir = Arc::new(directory(1, store(source.clone())));
    let slow = TenantId::parse("slow").unwrap();
    let slow_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waiting: Vec<_> = (0..6)
        .map(|_| {
            let (dir, slow, done) = (dir.clone(), slow.clone(), slow_done.clone());
            tokio::spawn(async move {
                let addr = dir.addr(&slow).await.unwrap();
                done.store(true, Ordering::SeqCst);
                addr
            })
        })
        .collect();
    // Once the slow bundle is being read (on a blocking thread), another tenant activates
    // without waiting for it.
    while source.loads.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    dir.addr(&TenantId::parse("acme").unwrap()).await.unwrap();
    assert!(
        !slow_done.load(Ordering::SeqCst),
        "acme waited for slow's compile"
    );
    let mut addrs = Vec::new();
    for w in waiting {
        addrs.push(w.await.unwrap());
    }
    assert!(addrs.windows(2).all(|w| w[0] == w[1]), "one actor for slow");
    assert_eq!(
        source.loads.load(Ordering::SeqCst),
        2,
        "slow was loaded once for six callers, acme once"
    );
    assert_eq!(dir.live(), 2);
}

#[actix_rt::test]
async fn a_panic_while_loading_a_bundle_is_that_tenants_error_only() {
    let source = Arc::new(MemorySource::default().with("acme", ALLOW_READS));
    let dir = directory(1, store(source));
    let err = dir
        .addr(&TenantId::parse("explodes").unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("panicked"), "{err}");
    // The directory, and other tenants, are unaffected.
    let out = judge(&dir, "acme", vec![event("acme", "1", "read")]).await;
    assert!(decision(&out[0].1).allowed);
}

#[derive(Default)]
struct Recorder {
    activated: Mutex<Vec<Activation>>,
    rejected: Mutex<Vec<String>>,
}

impl ActivationObserver for Recorder {
    fn activated(&self, a: &Activation, healthy: bool) {
        self.activated.lock().unwrap().push(a.clone());
        if !healthy {
            self.rejected
                .lock()
                .unwrap()
                .push(format!("{} still refused", a.tenant));
        }
    }
    fn rejected(&self, _tenant: &TenantId, error: &str) {
        self.rejected.lock().unwrap().push(error.to_owned());
    }
    fn recovered(&self, tenant: &TenantId) {
        self.rejected
            .lock()
            .unwrap()
            .push(format!("{tenant} recovered"));
    }
}

/// What `rule` says for `tenant`, asked as the decision API asks (activating it if needed).
fn ask(store: &PolicyStore, tenant: &str, rule: &str) -> Option<serde_json::Value> {
    let slot = store.activate(&TenantId::parse(tenant).unwrap()).unwrap();
    answer_query(
        &slot.load_full(),
        Query {
            path: RulePath::from_url(rule).unwrap(),
            input: Some(json!({"user": "alice", "password": "hunter2"})),
            now: Utc::now(),
            protection: None,
            signals: std::sync::Arc::from([]),
        },
    )
    .unwrap()
    .answer
    .result
}

/// acme's bundle at a version, read back through its rule `version`.
fn acme_version(n: u32) -> String {
    format!("package tenants.acme\nimport rego.v1\ndecision := 1\nversion := {n}")
}

/// A store over `source`, whose activations `recorder` sees.
fn recorded_store(source: Arc<MemorySource>) -> (Arc<PolicyStore>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let store = PolicyStore::new(source, "decision").with_observer(recorder.clone());
    (Arc::new(store), recorder)
}

#[actix_rt::test]
async fn reload_swaps_a_valid_bundle_and_keeps_the_last_good_one_otherwise() {
    let source = Arc::new(MemorySource::default().with("acme", &acme_version(1)));
    let (store, recorder) = recorded_store(source.clone());
    let acme = TenantId::parse("acme").unwrap();
    assert_eq!(ask(&store, "acme", "version"), Some(json!(1)));

    // A valid change: live at once, recorded as a new activation.
    source.put("acme", &acme_version(2));
    store.reload(&acme).unwrap();
    assert_eq!(ask(&store, "acme", "version"), Some(json!(2)));
    let activations = recorder.activated.lock().unwrap().clone();
    assert_eq!(activations.len(), 2);
    assert_ne!(activations[0].digest, activations[1].digest);

    // A broken change: refused, reported, and version 2 keeps serving.
    source.put("acme", "package tenants.acme\nversion := {");
    let err = store.reload(&acme).unwrap_err().to_string();
    assert!(err.contains("p.rego"), "{err}");
    store.reload(&acme).unwrap_err();
    assert_eq!(ask(&store, "acme", "version"), Some(json!(2)));
    let status = store.status(&acme).unwrap();
    assert_eq!(status.active.unwrap().digest, activations[1].digest);
    assert!(status.last_error.unwrap().contains("p.rego"));
    assert_eq!(recorder.rejected.lock().unwrap().len(), 1);
    assert_eq!(
        recorder.activated.lock().unwrap().len(),
        2,
        "no activation for a refused bundle"
    );

    // Reloading an unchanged bundle is not a new activation, and clears the error.
    source.put("acme", &acme_version(2));
    store.reload(&acme).unwrap();
    assert_eq!(recorder.activated.lock().unwrap().len(), 2);
    assert_eq!(store.status(&acme).unwrap().last_error, None);
    assert_eq!(
        recorder.rejected.lock().unwrap().last().map(String::as_str),
        Some("acme recovered"),
        "observers learn that the tenant is healthy again"
    );

    // A tenant appearing on disk is activated by a reload, without waiting for traffic.
    source.put(
        "globex",
        "package tenants.globex\nimport rego.v1\ndecision := 2",
    );
    let globex = TenantId::parse("globex").unwrap();
    assert!(store.serving(&globex).is_none());
    store.reload(&globex).unwrap();
    assert_eq!(store.serving(&globex).unwrap().policy().tenant(), &globex);
}

#[actix_rt::test]
async fn a_change_that_keeps_the_serving_revision_is_refused() {
    let source = Arc::new(MemorySource::default().with("acme", &acme_version(1)));
    source.set_revision("acme", "r1");
    let (store, recorder) = recorded_store(source.clone());
    let acme = TenantId::parse("acme").unwrap();
    assert_eq!(ask(&store, "acme", "version"), Some(json!(1)));

    // New content under the revision that names the serving one: two contents would be
    // stamped alike, so it is refused and version 1 keeps serving.
    source.put("acme", &acme_version(2));
    let err = store.reload(&acme).unwrap_err().to_string();
    assert!(
        err.contains("revision is still r1") && err.contains("metadata.json"),
        "{err}"
    );
    assert_eq!(ask(&store, "acme", "version"), Some(json!(1)));
    let status = store.status(&acme).unwrap();
    assert_eq!(status.active.unwrap().revision, "r1");
    assert!(status.last_error.is_some());
    assert_eq!(recorder.activated.lock().unwrap().len(), 1);

    // With a new revision the same content is taken.
    source.set_revision("acme", "r2");
    store.reload(&acme).unwrap();
    assert_eq!(ask(&store, "acme", "version"), Some(json!(2)));
    let activations = recorder.activated.lock().unwrap().clone();
    let revisions: Vec<&str> = activations.iter().map(|a| a.revision.as_str()).collect();
    assert_eq!(revisions, ["r1", "r2"]);
    assert_eq!(store.status(&acme).unwrap().last_error, None);
}

/// The revision `tenant` serves.
fn serving_revision(store: &PolicyStore, tenant: &TenantId) -> String {
    store
        .serving(tenant)
        .unwrap()
        .policy()
        .revision()
        .to_owned()
}

#[actix_rt::test]
async fn a_tenant_whose_query_runs_into_the_limit_is_answered_on_the_slow_lane_for_a_while() {
    let source = Arc::new(
        MemorySource::default()
            .with(
                "loopy",
                "package tenants.loopy\nimport rego.v1\ndecision := 1\nexplode := count([x | \
                 some i in numbers.range(1, 100000); some j in numbers.range(1, 100000); x := i * j])",
            )
            .with("acme", "package tenants.acme\nimport rego.v1\ndecision := 1"),
    );
    let store = Arc::new(
        PolicyStore::new(source, "decision")
            .with_eval_timeout(std::time::Duration::from_millis(50)),
    );
    let lane = SlowLane::start(store.clone(), std::time::Duration::from_secs(2), 1).unwrap();
    let (loopy, acme) = (
        TenantId::parse("loopy").unwrap(),
        TenantId::parse("acme").unwrap(),
    );
    let query = |rule: &str| Query {
        path: RulePath::from_url(rule).unwrap(),
        input: None,
        now: Utc::now(),
        protection: None,
        signals: std::sync::Arc::from([]),
    };
    assert!(!lane.holds(&loopy));
    let err = lane.query(&loopy, query("explode")).await.unwrap_err();
    let QueryError::Failed(failed) = err else {
        panic!("{err}")
    };
    assert!(
        matches!(failed.error, PolicyError::LimitExceeded(_)),
        "{failed:?}"
    );
    // What the decision log keeps of a failed query.
    assert_eq!(failed.path, "data.tenants.loopy.explode");
    assert_eq!(failed.revision, serving_revision(&store, &loopy));
    assert!(failed.eval_micros >= 50_000, "{failed:?}");
    assert!(lane.holds(&loopy), "the runaway tenant is on the lane");
    assert!(!lane.holds(&acme), "other tenants are not");
    let reply = lane.query(&acme, query("decision")).await.unwrap();
    assert_eq!(reply.answer.result, Some(json!(1)));

    // One query of the tenant may be on the lane (the share given at start); more are refused
    // at once rather than left to pile up.
    let (a, b, c) = tokio::join!(
        lane.query(&loopy, query("explode")),
        lane.query(&loopy, query("explode")),
        lane.query(&loopy, query("explode")),
    );
    assert!(
        matches!(&a, Err(QueryError::Failed(f)) if f.hit_the_limit()),
        "{a:?}"
    );
    for refused in [b, c] {
        assert!(
            matches!(&refused, Err(QueryError::Throttled(t)) if *t == loopy),
            "{refused:?}"
        );
    }

    // A cheap query of a held tenant is answered (on the lane) and does not renew the hold,
    // which ends by itself.
    let until = lane
        .held_until(&loopy)
        .expect("held after a slow evaluation");
    let reply = lane.query(&loopy, query("decision")).await.unwrap();
    assert_eq!(reply.answer.result, Some(json!(1)));
    assert_eq!(lane.held_until(&loopy), Some(until), "not renewed");
    tokio::time::sleep_until((until + std::time::Duration::from_millis(20)).into()).await;
    assert!(!lane.holds(&loopy), "the hold has ended");
    assert_eq!(lane.held_until(&loopy), None);
}

#[actix_rt::test]
async fn queries_answer_with_the_masked_input_for_the_log() {
    let source = Arc::new(MemorySource::default().with(
        "acme",
        "package tenants.acme\nimport rego.v1\ndecision := 1\nwho := input.user",
    ));
    let store = store(source);
    let serving = store
        .activate(&TenantId::parse("acme").unwrap())
        .unwrap()
        .load_full();
    let reply = answer_query(
        &serving,
        Query {
            path: RulePath::from_url("who").unwrap(),
            input: Some(json!({"user": "alice", "password": "hunter2"})),
            now: Utc::now(),
            protection: None,
            signals: std::sync::Arc::from([]),
        },
    )
    .unwrap();
    assert_eq!(reply.answer.result, Some(json!("alice")));
    assert_eq!(reply.answer.path, "data.tenants.acme.who");
    // No mask configured: logged as given (without the engine's context).
    assert_eq!(
        reply.logged_input,
        Some(json!({"user": "alice", "password": "hunter2"}))
    );
}

#[actix_rt::test]
async fn a_tenants_mask_removes_fields_from_the_logged_input_only() {
    let source = Arc::new(MemorySource::default().with(
        "acme",
        "package tenants.acme\nimport rego.v1\ndecision := 1\npw := input.password",
    ));
    source
        .masks
        .lock()
        .unwrap()
        .insert("acme".into(), vec!["/input/password".into()]);
    let store = store(source);
    let serving = store
        .activate(&TenantId::parse("acme").unwrap())
        .unwrap()
        .load_full();
    let reply = answer_query(
        &serving,
        Query {
            path: RulePath::from_url("pw").unwrap(),
            input: Some(json!({"user": "alice", "password": "hunter2"})),
            now: Utc::now(),
            protection: None,
            signals: std::sync::Arc::from([]),
        },
    )
    .unwrap();
    assert_eq!(
        reply.answer.result,
        Some(json!("hunter2")),
        "the policy sees it"
    );
    assert_eq!(reply.logged_input, Some(json!({"user": "alice"})));
    assert_eq!(reply.erased, ["/input/password"]);
}

#[actix_rt::test]
async fn queries_follow_reloads_activate_off_the_async_threads_and_report_unknown_tenants() {
    let source = Arc::new(MemorySource::default().with("acme", &acme_version(1)));
    let store = store(source.clone());
    let lane = SlowLane::start(store.clone(), std::time::Duration::from_secs(2), 1).unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let query = |rule: &str| Query {
        path: RulePath::from_url(rule).unwrap(),
        input: None,
        now: Utc::now(),
        protection: None,
        signals: std::sync::Arc::from([]),
    };
    let reply = lane.query(&acme, query("version")).await.unwrap();
    assert_eq!(
        reply.answer.result,
        Some(json!(1)),
        "activated on first use"
    );
    source.put("acme", &acme_version(2));
    store.reload(&acme).unwrap();
    let reply = lane.query(&acme, query("version")).await.unwrap();
    assert_eq!(
        reply.answer.result,
        Some(json!(2)),
        "the newly published policy answers"
    );
    let err = lane
        .query(&TenantId::parse("nobody").unwrap(), query("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueryError::Unavailable(PolicyUnavailable::Unknown(_))),
        "{err}"
    );
}

#[actix_rt::test]
async fn a_tenant_actor_judges_with_whatever_generation_the_store_publishes() {
    let judged_version =
        "package tenants.acme\nimport rego.v1\ndecision := {\"allow\": true, \"v\": 1}";
    let source = Arc::new(MemorySource::default().with("acme", judged_version));
    let store = store(source.clone());
    let dir = directory(1, store.clone());
    let acme = TenantId::parse("acme").unwrap();
    let version = |out: Vec<(Event, Verdict)>| decision(&out[0].1).result["v"].clone();
    let first = judge(&dir, "acme", vec![event("acme", "1", "read")]).await;
    assert_eq!(version(first), json!(1));
    // Nothing is sent to the actor: the store publishes, and the next batch sees it.
    source.put("acme", &judged_version.replace("\"v\": 1", "\"v\": 2"));
    store.reload(&acme).unwrap();
    let second = judge(&dir, "acme", vec![event("acme", "2", "read")]).await;
    assert_eq!(version(second), json!(2));
    assert_eq!(dir.stats().read().activations, 1, "the same actor");
}

#[actix_rt::test]
async fn a_revision_activated_before_a_restart_keeps_naming_its_content() {
    let source = Arc::new(MemorySource::default().with("acme", &acme_version(2)));
    source.set_revision("acme", "r1");
    let acme = TenantId::parse("acme").unwrap();
    let bundle = source.load(&acme).unwrap();

    // bundle_activations says r1 named other content: the edited bundle is refused.
    let known = [(acme.clone(), "r1".to_owned(), "sha256:earlier".to_owned())];
    let store = PolicyStore::new(source.clone(), "decision").with_known_revisions(known);
    let err = store.reload(&acme).unwrap_err().to_string();
    assert!(
        err.contains("revision is still r1") && err.contains("sha256:earlier"),
        "{err}"
    );
    assert!(store.serving(&acme).is_none());
    assert!(store.status(&acme).unwrap().last_error.is_some());

    // The content r1 named before is taken again, and so is any content under another revision.
    let known = [(acme.clone(), "r1".to_owned(), bundle.digest())];
    let store = PolicyStore::new(source.clone(), "decision").with_known_revisions(known);
    store.reload(&acme).unwrap();
    assert_eq!(serving_revision(&store, &acme), "r1");
    let known = [(acme.clone(), "r0".to_owned(), "sha256:earlier".to_owned())];
    let store = PolicyStore::new(source.clone(), "decision").with_known_revisions(known);
    store.reload(&acme).unwrap();

    // Within one process too: r1 → r2 → back to r1 with new content is refused.
    source.set_revision("acme", "r2");
    source.put("acme", &acme_version(3));
    store.reload(&acme).unwrap();
    source.set_revision("acme", "r1");
    source.put("acme", &acme_version(4));
    let err = store.reload(&acme).unwrap_err().to_string();
    assert!(err.contains("revision is still r1"), "{err}");
    assert_eq!(serving_revision(&store, &acme), "r2");
}

/// Hands out the bundles queued for it, in order; a bundle queued with a gate is handed out
/// only once the gate opens, so a test can make an earlier read finish last.
#[derive(Default)]
struct QueuedSource {
    queue: Mutex<Vec<(String, Option<std::sync::mpsc::Receiver<()>>)>>,
}

impl BundleSource for QueuedSource {
    fn load(&self, tenant: &TenantId) -> Result<Bundle, LoadError> {
        let (src, gate) = self.queue.lock().unwrap().remove(0);
        if let Some(gate) = gate {
            gate.recv().unwrap();
        }
        Ok(Bundle {
            tenant: tenant.clone(),
            modules: vec![("p.rego".into(), src)],
            data: None,
            revision: None,
            mask: Vec::new(),
            packs: Vec::new(),
        })
    }
}

#[actix_rt::test]
async fn an_error_found_by_a_later_read_outlives_an_earlier_read_that_finishes_last() {
    let (open, gate) = std::sync::mpsc::channel();
    let source = Arc::new(QueuedSource::default());
    source.queue.lock().unwrap().extend([
        (acme_version(1), None),
        (acme_version(2), Some(gate)),
        ("package tenants.acme\nversion := {".to_owned(), None),
    ]);
    let recorder = Arc::new(Recorder::default());
    let store =
        Arc::new(PolicyStore::new(source.clone(), "decision").with_observer(recorder.clone()));
    let acme = TenantId::parse("acme").unwrap();
    store.reload(&acme).unwrap();

    // Read 2 (good) starts first and is held; read 3 (broken) starts later and fails at once.
    let earlier = std::thread::spawn({
        let (store, acme) = (store.clone(), acme.clone());
        move || store.reload(&acme)
    });
    while source.queue.lock().unwrap().len() > 1 {
        std::thread::yield_now();
    }
    let Err(PolicyUnavailable::Unusable { reason: err, .. }) = store.reload(&acme) else {
        panic!("the broken read is refused")
    };
    assert!(err.contains("p.rego"), "{err}");
    open.send(()).unwrap();
    earlier.join().unwrap().unwrap();

    // Read 2 serves (nothing newer succeeded), but the bundle on disk is still the broken one.
    let status = store.status(&acme).unwrap();
    assert_eq!(status.last_error.as_deref(), Some(err.as_str()));
    let read_2 = Bundle {
        tenant: acme.clone(),
        modules: vec![("p.rego".into(), acme_version(2))],
        data: None,
        revision: None,
        mask: Vec::new(),
        packs: Vec::new(),
    };
    assert_eq!(
        store.serving(&acme).unwrap().policy().digest(),
        read_2.digest()
    );
    // Observers heard of the activation, and that the tenant is still unhealthy after it.
    assert_eq!(recorder.activated.lock().unwrap().len(), 2);
    assert_eq!(
        *recorder.rejected.lock().unwrap(),
        [err.clone(), "acme still refused".to_owned()]
    );
}

#[actix_rt::test]
async fn a_runaway_rule_costs_a_batch_a_bounded_number_of_time_limits() {
    let src = "package tenants.loopy\nimport rego.v1\ndecision := 1 if input.event.action == \
               \"ok\"\ndecision := count([x | some i in numbers.range(1, 100000); some j in \
               numbers.range(1, 100000); x := i * j]) if input.event.action == \"loop\"";
    let source = Arc::new(
        MemorySource::default()
            .with("loopy", src)
            .with("acme", ALLOW_READS),
    );
    let store = PolicyStore::new(source, "decision")
        .with_eval_timeout(std::time::Duration::from_millis(50));
    // One arbiter: the tenants share its thread, as tenants hashed alike do.
    let dir = directory(1, Arc::new(store));
    let events: Vec<Event> = ["ok", "loop", "ok", "loop", "loop", "ok", "loop"]
        .iter()
        .enumerate()
        .map(|(i, action)| event("loopy", &format!("e{i}"), action))
        .collect();
    let (judged, other) = tokio::join!(
        judge(&dir, "loopy", events),
        judge(&dir, "acme", vec![event("acme", "a1", "read")]),
    );
    let outcomes: Vec<&str> = judged
        .iter()
        .map(|(_, verdict)| match verdict {
            Verdict::Judged(_) => "judged",
            Verdict::Refused(e) if e.starts_with("evaluation stopped") => "stopped",
            Verdict::Refused(e) if e.starts_with("skipped: 2 of this tenant's") => "skipped",
            other => panic!("{other:?}"),
        })
        .collect();
    // Every event has an outcome, in order: judged until the second stop, skipped after it.
    assert_eq!(LIMIT_STOPS_PER_BATCH, 2);
    assert_eq!(
        outcomes,
        ["judged", "stopped", "judged", "stopped", "skipped", "skipped", "skipped"]
    );
    assert!(decision(&other[0].1).allowed);

    // The next batch starts afresh.
    let again = judge(
        &dir,
        "loopy",
        vec![event("loopy", "e9", "loop"), event("loopy", "e10", "ok")],
    )
    .await;
    assert!(matches!(&again[0].1, Verdict::Refused(e) if e.starts_with("evaluation stopped")));
    assert!(matches!(&again[1].1, Verdict::Judged(_)));
}

#[actix_rt::test]
async fn a_refused_range_is_fast_so_it_neither_skips_a_batch_nor_holds_the_slow_lane() {
    let src =
        "package tenants.big\nimport rego.v1\ndecision := count(numbers.range(1, input.raw.n))";
    let source = Arc::new(MemorySource::default().with("big", src));
    let store = store(source);
    let dir = directory(1, store.clone());
    let big = TenantId::parse("big").unwrap();
    let sized = |id: &str, n: f64| Event {
        raw: json!({"n": n}),
        ..event("big", id, "x")
    };
    let events = vec![
        sized("e1", 1e12),
        sized("e2", 1e12),
        sized("e3", 1e12),
        sized("e4", 3.0),
    ];
    let judged = judge(&dir, "big", events).await;
    for (event, verdict) in &judged[..3] {
        let Verdict::Refused(err) = verdict else {
            panic!("{verdict:?}")
        };
        assert!(
            err.contains("numbers.range would build"),
            "{}: {err}",
            event.event_id
        );
    }
    assert_eq!(decision(&judged[3].1).result, json!(3), "not skipped");

    let lane = SlowLane::start(store, std::time::Duration::from_secs(30), 1).unwrap();
    let err = lane
        .query(
            &big,
            Query {
                path: RulePath::from_url("decision").unwrap(),
                input: Some(json!({"raw": {"n": 1e12}})),
                now: Utc::now(),
                protection: None,
                signals: std::sync::Arc::from([]),
            },
        )
        .await
        .unwrap_err();
    let QueryError::Failed(failed) = err else {
        panic!("{err}")
    };
    assert!(
        matches!(failed.error, PolicyError::ValueTooLarge(_)),
        "{failed:?}"
    );
    assert!(!lane.holds(&big), "a refusal is not a slow evaluation");
}
