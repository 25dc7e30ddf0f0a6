//! The one place a tenant's compiled policy lives: bundles are read and compiled here, each
//! tenant's serving policy is published here once per generation, and every reader (tenant
//! actors judging events, HTTP workers and the slow lane answering queries) reads it from here.
//! Also each tenant's bundle status: the revision that serves and the last error, if the newest
//! bundle on disk could not be activated.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use portcullis_engine::policy::{CompileOptions, Evaluator, EvaluatorStatus, InputMask};
use portcullis_engine::{TenantId, TenantPolicy};
use serde::Serialize;

use super::{BundleSource, LoadError, ServingPolicy};

/// How long a failed activation is remembered before traffic reads the bundle again. Keeps a
/// tenant with a broken or missing bundle from costing a disk read per event or query (a hot
/// reload reads it at once, whatever this says).
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(5);

/// A bundle that became the serving policy of its tenant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Activation {
    pub tenant: TenantId,
    pub revision: String,
    pub digest: String,
    pub activated_at: DateTime<Utc>,
}

/// What an operator wants to know about one tenant's bundle.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BundleStatus {
    /// The serving bundle, if one was ever activated.
    pub active: Option<Activation>,
    /// Why the newest bundle was refused (the active one, if any, keeps serving); `None` once a
    /// load succeeds again.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// How the serving bundle is evaluated.
    pub evaluation: Option<EvaluatorStatus>,
    /// The serving bundle's decision-log mask.
    #[serde(skip)]
    pub mask: InputMask,
    /// The load generation that found `last_error`: only a load that read the bundle later
    /// clears it.
    #[serde(skip)]
    error_generation: u64,
}

/// Told of every activation and every refused bundle (the pipelines record them in Postgres
/// and metrics). Called on the loading thread with the store's status locked: implementations
/// must not block, nor call back into the store.
pub trait ActivationObserver: Send + Sync + 'static {
    /// A bundle became the serving policy. `healthy` is false when a load that read the bundle
    /// later found it broken: the tenant stays unhealthy (that refusal was already reported).
    fn activated(&self, activation: &Activation, healthy: bool);
    /// A bundle was refused (told once per distinct error, not once per retry).
    fn rejected(&self, tenant: &TenantId, error: &str);
    /// After a refusal, the bundle on disk loads again and is the one already serving (a change
    /// reverted): healthy again without a new activation.
    fn recovered(&self, tenant: &TenantId);
}

struct Ignore;

impl ActivationObserver for Ignore {
    fn activated(&self, _: &Activation, _: bool) {}
    fn rejected(&self, _: &TenantId, _: &str) {}
    fn recovered(&self, _: &TenantId) {}
}

/// Why a tenant has no policy to serve.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyUnavailable {
    #[error("no policy bundle for tenant {0}")]
    Unknown(TenantId),
    #[error("tenant {tenant} has no usable policy: {reason}")]
    Unusable { tenant: TenantId, reason: String },
}

/// One tenant's place in the store: its serving policy, swapped whole on every activation.
/// Readers that keep the slot (a tenant actor) see a new generation with one atomic load.
pub type PolicySlot = ArcSwap<ServingPolicy>;

/// Loads tenant bundles from a [`BundleSource`], compiles them with one rule and one evaluation
/// time limit, and publishes each tenant's serving policy.
pub struct PolicyStore {
    source: Arc<dyn BundleSource>,
    rule: String,
    options: CompileOptions,
    observer: Arc<dyn ActivationObserver>,
    /// Numbers loads in the order they read their bundle.
    generations: AtomicU64,
    /// Serving policies. The map changes only when a tenant is first activated; activations
    /// after that swap the slot's content, without a lock.
    serving: RwLock<HashMap<TenantId, Arc<PolicySlot>>>,
    status: Mutex<HashMap<TenantId, BundleStatus>>,
    /// Every revision each tenant has activated, with the digest it named. Locked only while
    /// `status` is.
    revisions: Mutex<HashMap<TenantId, HashMap<String, String>>>,
    /// Recent failed activations, so traffic for a tenant without a usable bundle does not
    /// read its files again and again.
    failed: Mutex<HashMap<TenantId, (Instant, PolicyUnavailable)>>,
    /// One gate per tenant being activated by traffic: its bundle is compiled once however
    /// many callers ask at once, and other tenants' lookups go on meanwhile.
    activating: Mutex<HashMap<TenantId, Arc<Mutex<()>>>>,
}

impl PolicyStore {
    pub fn new(source: Arc<dyn BundleSource>, rule: impl Into<String>) -> Self {
        Self {
            source,
            rule: rule.into(),
            options: CompileOptions::default(),
            observer: Arc::new(Ignore),
            generations: AtomicU64::new(1),
            serving: RwLock::default(),
            status: Mutex::default(),
            revisions: Mutex::default(),
            failed: Mutex::default(),
            activating: Mutex::default(),
        }
    }

    /// Revisions activated before this process started (tenant, revision, digest), as
    /// `bundle_activations` records them: a revision keeps naming the content it named then,
    /// across restarts. Of two digests for one revision, the later one given wins.
    pub fn with_known_revisions(
        self,
        known: impl IntoIterator<Item = (TenantId, String, String)>,
    ) -> Self {
        {
            let mut revisions = lock(&self.revisions);
            for (tenant, revision, digest) in known {
                revisions
                    .entry(tenant)
                    .or_default()
                    .insert(revision, digest);
            }
        }
        self
    }

    /// The guard rail: how long one evaluation may run before it is stopped with an error.
    pub fn with_eval_timeout(mut self, limit: Duration) -> Self {
        self.options.eval_timeout = limit;
        self
    }

    /// Which regorus evaluator answers (the VM with event-name dispatch unless told otherwise).
    pub fn with_evaluator(mut self, evaluator: Evaluator) -> Self {
        self.options.evaluator = evaluator;
        self
    }

    pub fn with_observer(mut self, observer: Arc<dyn ActivationObserver>) -> Self {
        self.observer = observer;
        self
    }

    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// How long one evaluation may run.
    pub fn eval_timeout(&self) -> Duration {
        self.options.eval_timeout
    }

    /// The policy `tenant` serves, if it was ever activated. Never reads a file.
    pub fn serving(&self, tenant: &TenantId) -> Option<Arc<ServingPolicy>> {
        self.slot(tenant).map(|slot| slot.load_full())
    }

    /// `tenant`'s slot, if it was ever activated: keep it to follow every later activation.
    pub fn slot(&self, tenant: &TenantId) -> Option<Arc<PolicySlot>> {
        self.serving
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }

    /// `tenant`'s slot, activating the tenant on first use: what traffic calls. Blocks while
    /// the bundle is read and compiled, so it belongs on a blocking thread (`spawn_blocking`),
    /// not on an async one. A tenant whose activation failed in the last few seconds gets the
    /// same error again without its files being read.
    pub fn activate(&self, tenant: &TenantId) -> Result<Arc<PolicySlot>, PolicyUnavailable> {
        if let Some(slot) = self.slot(tenant) {
            return Ok(slot);
        }
        if let Some(err) = self.failed_recently(tenant) {
            return Err(err);
        }
        let gate = lock(&self.activating)
            .entry(tenant.clone())
            .or_default()
            .clone();
        let outcome = {
            let _one_load = lock(&gate);
            // Whoever held the gate before us may have finished the job.
            match (self.slot(tenant), self.failed_recently(tenant)) {
                (Some(slot), _) => Ok(slot),
                (None, Some(err)) => Err(err),
                (None, None) => self.load(tenant).map(|_| {
                    self.slot(tenant)
                        .expect("a successful load publishes the tenant's policy")
                }),
            }
        };
        let mut gates = lock(&self.activating);
        if gates
            .get(tenant)
            .is_some_and(|g| Arc::ptr_eq(g, &gate) && Arc::strong_count(g) <= 2)
        {
            gates.remove(tenant);
        }
        outcome
    }

    /// Reads `tenant`'s bundle again (hot reload, start-up): a valid one is published and serves
    /// from now on; an invalid one is reported, and the serving policy, if any, stays.
    pub fn reload(&self, tenant: &TenantId) -> Result<(), PolicyUnavailable> {
        self.load(tenant).map(|_| ())
    }

    fn failed_recently(&self, tenant: &TenantId) -> Option<PolicyUnavailable> {
        match lock(&self.failed).get(tenant) {
            Some((at, err)) if at.elapsed() < RETRY_FAILED_AFTER => Some(err.clone()),
            _ => None,
        }
    }

    /// Remembers a failed activation of a tenant that serves nothing. Tenant ids come from
    /// requests too: what has expired is forgotten, so this holds at most the ids of the last
    /// few seconds.
    fn remember_failure(&self, tenant: &TenantId, err: &PolicyUnavailable) {
        if self.slot(tenant).is_some() {
            return;
        }
        let mut failed = lock(&self.failed);
        failed.retain(|_, (at, _)| at.elapsed() < RETRY_FAILED_AFTER);
        failed.insert(tenant.clone(), (Instant::now(), err.clone()));
    }

    /// Publishes `policy` as `tenant`'s serving policy, unless a load that read the bundle later
    /// (a larger generation) already did. Returns whether it was published.
    fn publish(&self, tenant: &TenantId, policy: &TenantPolicy, generation: u64) -> bool {
        let serving = Arc::new(ServingPolicy::new(policy.clone(), generation));
        if let Some(slot) = self.slot(tenant) {
            return swap_if_newer(&slot, serving);
        }
        let mut map = self.serving.write().unwrap_or_else(|p| p.into_inner());
        match map.get(tenant) {
            // Published by another load between our look and the write lock.
            Some(slot) => swap_if_newer(slot, serving),
            None => {
                map.insert(tenant.clone(), Arc::new(ArcSwap::new(serving)));
                true
            }
        }
    }

    /// Reads and compiles `tenant`'s bundle, publishes it if it is valid, and records the
    /// outcome in the tenant's status. A panic in there (the Rego compiler meeting hostile or
    /// unusual input, a bundle source bug) is this tenant's error instead of unwinding into the
    /// caller, which may serve every tenant.
    pub(crate) fn load(&self, tenant: &TenantId) -> Result<u64, PolicyUnavailable> {
        // Numbered before the bundle is read: of two loads, the one that read later is newer,
        // whichever finishes compiling first.
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let compiled = catch_unwind(AssertUnwindSafe(|| {
            let bundle = self.source.load(tenant).map_err(|e| match e {
                LoadError::NotFound(_) => PolicyUnavailable::Unknown(tenant.clone()),
                other => unusable(tenant, other.to_string()),
            })?;
            TenantPolicy::compile_with(&bundle, &self.rule, &self.options)
                .map_err(|e| unusable(tenant, format!("tenant {tenant}: {e}")))
        }))
        .unwrap_or_else(|_| {
            Err(unusable(
                tenant,
                format!("loading the policy of tenant {tenant} panicked"),
            ))
        });
        let mut status = lock(&self.status);
        let mut revisions = lock(&self.revisions);
        // A revision names one content: decisions, logs and activations are stamped with it. A
        // change that keeps a revision already activated (an edit without a bump of
        // metadata.json, before or since a restart) would stamp different decisions alike, so
        // it is refused like any other invalid change.
        let compiled = compiled.and_then(|policy| {
            let named = revisions
                .get(tenant)
                .and_then(|known| known.get(policy.revision()));
            match named {
                Some(digest) if digest != policy.digest() => Err(unusable(
                    tenant,
                    format!(
                        "tenant {tenant}: the bundle changed ({}), but its revision is still {}, \
                         which names other content activated before ({digest}): set a new \
                         revision in metadata.json, or remove it to stamp decisions with the \
                         content digest",
                        policy.digest(),
                        policy.revision(),
                    ),
                )),
                _ => Ok(policy),
            }
        });
        match &compiled {
            Ok(policy) => {
                if !self.publish(tenant, policy, generation) {
                    // A load that read the bundle later has already published.
                    return Ok(generation);
                }
                lock(&self.failed).remove(tenant);
                let entry = status.entry(tenant.clone()).or_default();
                // An error found by a load that read the bundle after this one still stands.
                let mut was_refused = false;
                if entry.error_generation < generation {
                    was_refused = entry.last_error.take().is_some();
                    entry.last_error_at = None;
                }
                entry.mask = policy.mask().clone();
                entry.evaluation = Some(policy.evaluator_status());
                let new = entry
                    .active
                    .as_ref()
                    .is_none_or(|a| a.digest != policy.digest() || a.revision != policy.revision());
                if new {
                    let activation = Activation {
                        tenant: tenant.clone(),
                        revision: policy.revision().to_owned(),
                        digest: policy.digest().to_owned(),
                        activated_at: Utc::now(),
                    };
                    self.observer
                        .activated(&activation, entry.last_error.is_none());
                    revisions
                        .entry(tenant.clone())
                        .or_default()
                        .insert(activation.revision.clone(), activation.digest.clone());
                    entry.active = Some(activation);
                } else if was_refused {
                    self.observer.recovered(tenant);
                }
            }
            Err(_)
                if self
                    .serving(tenant)
                    .is_some_and(|s| s.generation() > generation) =>
            {
                // A load that read the bundle later has succeeded meanwhile: this one read a
                // half-written change, and its error is no longer the tenant's state.
            }
            Err(_)
                if status
                    .get(tenant)
                    .is_some_and(|s| s.error_generation > generation) => {}
            Err(e) => {
                self.remember_failure(tenant, e);
                // A tenant that never had a bundle has no status to report; one whose bundle
                // was removed keeps serving the last, and that is its error.
                let error = match e {
                    PolicyUnavailable::Unusable { reason, .. } => Some(reason.clone()),
                    PolicyUnavailable::Unknown(_) => {
                        status.contains_key(tenant).then(|| e.to_string())
                    }
                };
                if let Some(error) = error {
                    let entry = status.entry(tenant.clone()).or_default();
                    entry.error_generation = generation;
                    // A broken bundle is retried on traffic (every few seconds): report it once.
                    if entry.last_error.as_deref() != Some(error.as_str()) {
                        self.observer.rejected(tenant, &error);
                        entry.last_error_at = Some(Utc::now());
                    }
                    entry.last_error = Some(error);
                }
            }
        }
        compiled.map(|_| generation)
    }

    pub fn status(&self, tenant: &TenantId) -> Option<BundleStatus> {
        lock(&self.status).get(tenant).cloned()
    }

    /// Every tenant with a status, by tenant id.
    pub fn statuses(&self) -> Vec<(TenantId, BundleStatus)> {
        let mut all: Vec<_> = lock(&self.status)
            .iter()
            .map(|(t, s)| (t.clone(), s.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// Puts `serving` in `slot` unless the slot holds a later generation; returns whether it did.
fn swap_if_newer(slot: &PolicySlot, serving: Arc<ServingPolicy>) -> bool {
    let generation = serving.generation();
    let previous = slot.rcu(|current| {
        if current.generation() > generation {
            current.clone()
        } else {
            serving.clone()
        }
    });
    previous.generation() <= generation
}

fn unusable(tenant: &TenantId, reason: String) -> PolicyUnavailable {
    PolicyUnavailable::Unusable {
        tenant: tenant.clone(),
        reason,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
