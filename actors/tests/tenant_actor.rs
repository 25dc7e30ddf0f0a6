//! Tenant actors inside a real actix system: evaluation, isolation of failures, supervision.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use portcullis_actors::{
    Activation, ActivationObserver, BundleSource, Evaluate, Install, LoadError, PolicyLoader,
    Query, QueryError, SlowLane, TenantDirectory, LIMIT_STOPS_PER_BATCH,
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

#[actix_rt::test]
async fn evaluates_in_order_and_each_tenant_only_with_its_own_policy() {
    let source = Arc::new(MemorySource::default().with("acme", ALLOW_READS).with(
        "globex",
        "package tenants.globex\nimport rego.v1\ndecision := true",
    ));
    let dir = TenantDirectory::new(
        2,
        Arc::new(PolicyLoader::new(source.clone(), "decision")),
        16,
    );
    let acme = TenantId::parse("acme").unwrap();
    let events = vec![event("acme", "1", "read"), event("acme", "2", "write")];
    let out = dir
        .get(&acme)
        .unwrap()
        .send(Evaluate {
            events,
            now: Utc::now(),
        })
        .await
        .unwrap();
    let verdicts: Vec<(String, bool)> = out
        .into_iter()
        .map(|(_, o)| o.map(|d| (d.event_id, d.allowed)).unwrap())
        .collect();
    assert_eq!(verdicts, vec![("1".into(), true), ("2".into(), false)]);

    let globex = TenantId::parse("globex").unwrap();
    let out = dir.get(&globex).unwrap().send(Evaluate {
        events: vec![event("globex", "3", "write")],
        now: Utc::now(),
    });
    let (e, d) = out.await.unwrap().remove(0);
    let d = d.unwrap();
    assert_eq!(e.event_id, "3");
    assert!(d.allowed);
    assert_eq!(d.rule_path, "data.tenants.globex.decision");
    assert_eq!(dir.active_tenants(), 2);
    // Activation happens once per tenant, not per message.
    dir.get(&acme).unwrap();
    assert_eq!(source.loads.load(Ordering::SeqCst), 2);
}

#[actix_rt::test]
async fn a_tenant_without_a_usable_bundle_is_an_error_and_is_not_retried_per_event() {
    let source =
        Arc::new(MemorySource::default().with("broken", "package tenants.broken\ndecision := {"));
    let dir = TenantDirectory::new(
        1,
        Arc::new(PolicyLoader::new(source.clone(), "decision")),
        16,
    );
    let missing = dir.get(&TenantId::parse("nobody").unwrap()).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("no policy bundle for tenant nobody"),
        "{missing}"
    );
    let broken = TenantId::parse("broken").unwrap();
    let err = dir.get(&broken).unwrap_err().to_string();
    assert!(err.contains("p.rego"), "{err}");
    dir.get(&broken).unwrap_err();
    assert_eq!(
        source.loads.load(Ordering::SeqCst),
        2,
        "failed activation is cached briefly"
    );
}

#[actix_rt::test]
async fn a_first_activation_loads_once_and_does_not_hold_up_other_tenants() {
    let slow_src = ALLOW_READS.replace("tenants.acme", "tenants.slow");
    let source = Arc::new(
        MemorySource::default()
            .with("slow", &slow_src)
            .with("acme", ALLOW_READS),
    );
    let dir = TenantDirectory::new(
        1,
        Arc::new(PolicyLoader::new(source.clone(), "decision")),
        16,
    );
    let slow = TenantId::parse("slow").unwrap();
    let slow_done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let waiting: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    let addr = dir.get(&slow).unwrap();
                    slow_done.store(true, Ordering::SeqCst);
                    addr
                })
            })
            .collect();
        // Once the slow bundle is being read, another tenant activates without waiting for it.
        while source.loads.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        dir.get(&TenantId::parse("acme").unwrap()).unwrap();
        assert!(
            !slow_done.load(Ordering::SeqCst),
            "acme waited for slow's compile"
        );
        let addrs: Vec<_> = waiting.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(addrs.windows(2).all(|w| w[0] == w[1]), "one actor for slow");
    });
    assert_eq!(
        source.loads.load(Ordering::SeqCst),
        2,
        "slow was loaded once for six callers, acme once"
    );
    assert_eq!(dir.active_tenants(), 2);
}

#[actix_rt::test]
async fn a_panic_while_loading_a_bundle_is_that_tenants_error_only() {
    let source = Arc::new(MemorySource::default().with("acme", ALLOW_READS));
    let dir = TenantDirectory::new(1, Arc::new(PolicyLoader::new(source, "decision")), 16);
    let err = dir
        .get(&TenantId::parse("explodes").unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("panicked"), "{err}");
    // The directory, and other tenants, are unaffected.
    let out = dir
        .get(&TenantId::parse("acme").unwrap())
        .unwrap()
        .send(Evaluate {
            events: vec![event("acme", "1", "read")],
            now: Utc::now(),
        })
        .await
        .unwrap();
    assert!(out[0].1.as_ref().unwrap().allowed);
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

async fn ask(dir: &TenantDirectory, tenant: &str, rule: &str) -> Option<serde_json::Value> {
    dir.get(&TenantId::parse(tenant).unwrap())
        .unwrap()
        .send(Query {
            path: RulePath::from_url(rule).unwrap(),
            input: Some(json!({"user": "alice", "password": "hunter2"})),
            now: Utc::now(),
        })
        .await
        .unwrap()
        .unwrap()
        .answer
        .result
}

/// acme's bundle at a version, read back through its rule `version`.
fn acme_version(n: u32) -> String {
    format!("package tenants.acme\nimport rego.v1\ndecision := 1\nversion := {n}")
}

/// A directory of one arbiter over `source`, whose activations `recorder` sees.
fn recorded_directory(source: Arc<MemorySource>) -> (TenantDirectory, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let loader = PolicyLoader::new(source, "decision").with_observer(recorder.clone());
    (TenantDirectory::new(1, Arc::new(loader), 16), recorder)
}

#[actix_rt::test]
async fn reload_swaps_a_valid_bundle_and_keeps_the_last_good_one_otherwise() {
    let source = Arc::new(MemorySource::default().with("acme", &acme_version(1)));
    let (dir, recorder) = recorded_directory(source.clone());
    let acme = TenantId::parse("acme").unwrap();
    assert_eq!(ask(&dir, "acme", "version").await, Some(json!(1)));

    // A valid change: live at once, recorded as a new activation.
    source.put("acme", &acme_version(2));
    dir.reload(&acme).unwrap();
    assert_eq!(ask(&dir, "acme", "version").await, Some(json!(2)));
    let activations = recorder.activated.lock().unwrap().clone();
    assert_eq!(activations.len(), 2);
    assert_ne!(activations[0].digest, activations[1].digest);

    // A broken change: refused, reported, and version 2 keeps serving.
    source.put("acme", "package tenants.acme\nversion := {");
    let err = dir.reload(&acme).unwrap_err().to_string();
    assert!(err.contains("p.rego"), "{err}");
    dir.reload(&acme).unwrap_err();
    assert_eq!(ask(&dir, "acme", "version").await, Some(json!(2)));
    let status = dir.loader().status(&acme).unwrap();
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
    dir.reload(&acme).unwrap();
    assert_eq!(recorder.activated.lock().unwrap().len(), 2);
    assert_eq!(dir.loader().status(&acme).unwrap().last_error, None);
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
    dir.reload(&globex).unwrap();
    assert_eq!(dir.active_tenants(), 2);
}

#[actix_rt::test]
async fn a_change_that_keeps_the_serving_revision_is_refused() {
    let source = Arc::new(MemorySource::default().with("acme", &acme_version(1)));
    source.set_revision("acme", "r1");
    let (dir, recorder) = recorded_directory(source.clone());
    let acme = TenantId::parse("acme").unwrap();
    assert_eq!(ask(&dir, "acme", "version").await, Some(json!(1)));

    // New content under the revision that names the serving one: two contents would be
    // stamped alike, so it is refused and version 1 keeps serving.
    source.put("acme", &acme_version(2));
    let err = dir.reload(&acme).unwrap_err().to_string();
    assert!(
        err.contains("revision is still r1") && err.contains("metadata.json"),
        "{err}"
    );
    assert_eq!(ask(&dir, "acme", "version").await, Some(json!(1)));
    let status = dir.loader().status(&acme).unwrap();
    assert_eq!(status.active.unwrap().revision, "r1");
    assert!(status.last_error.is_some());
    assert_eq!(recorder.activated.lock().unwrap().len(), 1);

    // With a new revision the same content is taken.
    source.set_revision("acme", "r2");
    dir.reload(&acme).unwrap();
    assert_eq!(ask(&dir, "acme", "version").await, Some(json!(2)));
    let activations = recorder.activated.lock().unwrap().clone();
    let revisions: Vec<&str> = activations.iter().map(|a| a.revision.as_str()).collect();
    assert_eq!(revisions, ["r1", "r2"]);
    assert_eq!(dir.loader().status(&acme).unwrap().last_error, None);
}

/// The revision `tenant` serves.
fn dir_revision(dir: &TenantDirectory, tenant: &TenantId) -> String {
    dir.loader()
        .serving(tenant)
        .unwrap()
        .policy
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
    let loader = PolicyLoader::new(source, "decision")
        .with_eval_timeout(std::time::Duration::from_millis(50));
    let lane_dir = Arc::new(TenantDirectory::new(1, Arc::new(loader), 16));
    let lane = SlowLane::start(lane_dir.clone(), std::time::Duration::from_secs(2), 1).unwrap();
    let (loopy, acme) = (
        TenantId::parse("loopy").unwrap(),
        TenantId::parse("acme").unwrap(),
    );
    let query = |rule: &str| Query {
        path: RulePath::from_url(rule).unwrap(),
        input: None,
        now: Utc::now(),
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
    assert_eq!(failed.revision, dir_revision(&lane_dir, &loopy));
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
    let dir = TenantDirectory::new(1, Arc::new(PolicyLoader::new(source, "decision")), 16);
    let reply = dir
        .get(&TenantId::parse("acme").unwrap())
        .unwrap()
        .send(Query {
            path: RulePath::from_url("who").unwrap(),
            input: Some(json!({"user": "alice", "password": "hunter2"})),
            now: Utc::now(),
        })
        .await
        .unwrap()
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
    let dir = TenantDirectory::new(1, Arc::new(PolicyLoader::new(source, "decision")), 16);
    let reply = dir
        .get(&TenantId::parse("acme").unwrap())
        .unwrap()
        .send(Query {
            path: RulePath::from_url("pw").unwrap(),
            input: Some(json!({"user": "alice", "password": "hunter2"})),
            now: Utc::now(),
        })
        .await
        .unwrap()
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
async fn queries_on_the_callers_thread_follow_reloads_and_report_unknown_tenants() {
    let source = Arc::new(MemorySource::default().with("acme", &acme_version(1)));
    let dir = TenantDirectory::new(
        1,
        Arc::new(PolicyLoader::new(source.clone(), "decision")),
        16,
    );
    let acme = TenantId::parse("acme").unwrap();
    let version = |dir: &TenantDirectory| {
        dir.query_here(
            &acme,
            Query {
                path: RulePath::from_url("version").unwrap(),
                input: None,
                now: Utc::now(),
            },
        )
        .unwrap()
        .answer
        .result
    };
    assert_eq!(version(&dir), Some(json!(1)), "activated on first use");
    source.put("acme", &acme_version(2));
    dir.reload(&acme).unwrap();
    assert_eq!(
        version(&dir),
        Some(json!(2)),
        "this thread's copy was refreshed"
    );
    let err = dir
        .query_here(
            &TenantId::parse("nobody").unwrap(),
            Query {
                path: RulePath::from_url("x").unwrap(),
                input: None,
                now: Utc::now(),
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            portcullis_actors::QueryError::Directory(portcullis_actors::DirectoryError::Unknown(_))
        ),
        "{err}"
    );
}

#[actix_rt::test]
async fn an_install_older_than_the_serving_policy_is_ignored() {
    let source = Arc::new(MemorySource::default().with("acme", &acme_version(2)));
    let dir = TenantDirectory::new(1, Arc::new(PolicyLoader::new(source, "decision")), 16);
    let acme = TenantId::parse("acme").unwrap();
    let addr = dir.get(&acme).unwrap();
    let current = dir.loader().serving(&acme).unwrap().generation;
    let stale = Bundle {
        tenant: acme.clone(),
        modules: vec![("p.rego".into(), acme_version(1))],
        data: None,
        revision: None,
        mask: Vec::new(),
    };
    let policy = portcullis_engine::TenantPolicy::compile(&stale, "decision").unwrap();
    addr.send(Install {
        policy: policy.clone(),
        generation: current - 1,
    })
    .await
    .unwrap();
    assert_eq!(
        ask(&dir, "acme", "version").await,
        Some(json!(2)),
        "older install ignored"
    );
    addr.send(Install {
        policy,
        generation: current + 1_000_000,
    })
    .await
    .unwrap();
    assert_eq!(
        ask(&dir, "acme", "version").await,
        Some(json!(1)),
        "newer install applied"
    );
}

#[actix_rt::test]
async fn a_revision_activated_before_a_restart_keeps_naming_its_content() {
    let source = Arc::new(MemorySource::default().with("acme", &acme_version(2)));
    source.set_revision("acme", "r1");
    let acme = TenantId::parse("acme").unwrap();
    let bundle = source.load(&acme).unwrap();

    // bundle_activations says r1 named other content: the edited bundle is refused.
    let known = [(acme.clone(), "r1".to_owned(), "sha256:earlier".to_owned())];
    let loader = PolicyLoader::new(source.clone(), "decision").with_known_revisions(known);
    let err = loader.load(&acme).unwrap_err().to_string();
    assert!(
        err.contains("revision is still r1") && err.contains("sha256:earlier"),
        "{err}"
    );
    assert!(loader.serving(&acme).is_none());
    assert!(loader.status(&acme).unwrap().last_error.is_some());

    // The content r1 named before is taken again, and so is any content under another revision.
    let known = [(acme.clone(), "r1".to_owned(), bundle.digest())];
    let loader = PolicyLoader::new(source.clone(), "decision").with_known_revisions(known);
    assert_eq!(loader.load(&acme).unwrap().0.revision(), "r1");
    let known = [(acme.clone(), "r0".to_owned(), "sha256:earlier".to_owned())];
    let loader = PolicyLoader::new(source.clone(), "decision").with_known_revisions(known);
    loader.load(&acme).unwrap();

    // Within one process too: r1 → r2 → back to r1 with new content is refused.
    source.set_revision("acme", "r2");
    source.put("acme", &acme_version(3));
    loader.load(&acme).unwrap();
    source.set_revision("acme", "r1");
    source.put("acme", &acme_version(4));
    let err = loader.load(&acme).unwrap_err().to_string();
    assert!(err.contains("revision is still r1"), "{err}");
    assert_eq!(loader.serving(&acme).unwrap().policy.revision(), "r2");
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
    let loader =
        Arc::new(PolicyLoader::new(source.clone(), "decision").with_observer(recorder.clone()));
    let acme = TenantId::parse("acme").unwrap();
    loader.load(&acme).unwrap();

    // Read 2 (good) starts first and is held; read 3 (broken) starts later and fails at once.
    let earlier = std::thread::spawn({
        let (loader, acme) = (loader.clone(), acme.clone());
        move || loader.load(&acme).map(|(_, generation)| generation)
    });
    while source.queue.lock().unwrap().len() > 1 {
        std::thread::yield_now();
    }
    let err = loader.load(&acme).unwrap_err().to_string();
    assert!(err.contains("p.rego"), "{err}");
    open.send(()).unwrap();
    earlier.join().unwrap().unwrap();

    // Read 2 serves (nothing newer succeeded), but the bundle on disk is still the broken one.
    let status = loader.status(&acme).unwrap();
    assert_eq!(status.last_error.as_deref(), Some(err.as_str()));
    let read_2 = Bundle {
        tenant: acme.clone(),
        modules: vec![("p.rego".into(), acme_version(2))],
        data: None,
        revision: None,
        mask: Vec::new(),
    };
    assert_eq!(
        loader.serving(&acme).unwrap().policy.digest(),
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
    let loader = PolicyLoader::new(source, "decision")
        .with_eval_timeout(std::time::Duration::from_millis(50));
    // One arbiter: the tenants share its thread, as tenants hashed alike do.
    let dir = TenantDirectory::new(1, Arc::new(loader), 16);
    let loopy = dir.get(&TenantId::parse("loopy").unwrap()).unwrap();
    let acme = dir.get(&TenantId::parse("acme").unwrap()).unwrap();
    let events: Vec<Event> = ["ok", "loop", "ok", "loop", "loop", "ok", "loop"]
        .iter()
        .enumerate()
        .map(|(i, action)| event("loopy", &format!("e{i}"), action))
        .collect();
    let batch = loopy.send(Evaluate {
        events,
        now: Utc::now(),
    });
    let other = acme.send(Evaluate {
        events: vec![event("acme", "a1", "read")],
        now: Utc::now(),
    });
    let (judged, other) = tokio::join!(batch, other);
    let outcomes: Vec<&str> = judged
        .unwrap()
        .iter()
        .map(|(_, outcome)| match outcome {
            Ok(_) => "judged",
            Err(e) if e.starts_with("evaluation stopped") => "stopped",
            Err(e) if e.starts_with("skipped: 2 of this tenant's") => "skipped",
            Err(e) => panic!("{e}"),
        })
        .collect();
    // Every event has an outcome, in order: judged until the second stop, skipped after it.
    assert_eq!(LIMIT_STOPS_PER_BATCH, 2);
    assert_eq!(
        outcomes,
        ["judged", "stopped", "judged", "stopped", "skipped", "skipped", "skipped"]
    );
    assert!(other.unwrap()[0].1.as_ref().unwrap().allowed);

    // The next batch starts afresh.
    let again = loopy
        .send(Evaluate {
            events: vec![event("loopy", "e9", "loop"), event("loopy", "e10", "ok")],
            now: Utc::now(),
        })
        .await
        .unwrap();
    assert!(again[0]
        .1
        .as_ref()
        .unwrap_err()
        .starts_with("evaluation stopped"));
    assert!(again[1].1.is_ok());
}

#[actix_rt::test]
async fn a_refused_range_is_fast_so_it_neither_skips_a_batch_nor_holds_the_slow_lane() {
    let src =
        "package tenants.big\nimport rego.v1\ndecision := count(numbers.range(1, input.raw.n))";
    let source = Arc::new(MemorySource::default().with("big", src));
    let dir = Arc::new(TenantDirectory::new(
        1,
        Arc::new(PolicyLoader::new(source, "decision")),
        16,
    ));
    let big = TenantId::parse("big").unwrap();
    let sized = |id: &str, n: f64| Event {
        raw: json!({"n": n}),
        ..event("big", id, "x")
    };
    let judged = dir
        .get(&big)
        .unwrap()
        .send(Evaluate {
            events: vec![
                sized("e1", 1e12),
                sized("e2", 1e12),
                sized("e3", 1e12),
                sized("e4", 3.0),
            ],
            now: Utc::now(),
        })
        .await
        .unwrap();
    for (event, outcome) in &judged[..3] {
        let err = outcome.as_ref().unwrap_err();
        assert!(
            err.contains("numbers.range would build"),
            "{}: {err}",
            event.event_id
        );
    }
    assert_eq!(
        judged[3].1.as_ref().unwrap().result,
        json!(3),
        "not skipped"
    );

    let lane = SlowLane::start(dir.clone(), std::time::Duration::from_secs(30), 1).unwrap();
    let err = lane
        .query(
            &big,
            Query {
                path: RulePath::from_url("decision").unwrap(),
                input: Some(json!({"raw": {"n": 1e12}})),
                now: Utc::now(),
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
