//! Tenant actors inside a real actix system: evaluation, isolation of failures, supervision.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use portcullis_actors::{BundleSource, Evaluate, LoadError, TenantDirectory};
use portcullis_engine::{Bundle, Event, EventKind, Source, TenantId};
use serde_json::json;

#[derive(Default)]
struct MemorySource {
    bundles: Mutex<HashMap<String, String>>,
    loads: AtomicUsize,
}

impl MemorySource {
    fn with(self, tenant: &str, src: &str) -> Self {
        self.bundles
            .lock()
            .unwrap()
            .insert(tenant.into(), src.into());
        self
    }
}

impl BundleSource for MemorySource {
    fn load(&self, tenant: &TenantId) -> Result<Bundle, LoadError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        assert_ne!(tenant.as_str(), "explodes", "a bundle source that panics");
        let src = self.bundles.lock().unwrap().get(tenant.as_str()).cloned();
        let src = src.ok_or_else(|| LoadError::NotFound(tenant.to_string()))?;
        Ok(Bundle {
            tenant: tenant.clone(),
            modules: vec![("p.rego".into(), src)],
            data: None,
            revision: None,
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
    let dir = TenantDirectory::new(2, source.clone(), "decision", 16);
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
    let dir = TenantDirectory::new(1, source.clone(), "decision", 16);
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
async fn a_panic_while_loading_a_bundle_is_that_tenants_error_only() {
    let source = Arc::new(MemorySource::default().with("acme", ALLOW_READS));
    let dir = TenantDirectory::new(1, source, "decision", 16);
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
