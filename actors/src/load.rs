//! Reading and compiling tenant bundles, and keeping each tenant's bundle status: the revision
//! that serves and the last error, if the newest bundle on disk could not be activated.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use portcullis_engine::policy::{CompileOptions, Evaluator, EvaluatorStatus, InputMask};
use portcullis_engine::{TenantId, TenantPolicy};
use serde::Serialize;

use crate::{BundleSource, LoadError};

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

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
/// and metrics). Called on the loading thread: implementations must not block.
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

/// Why a tenant has no new policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActivationError {
    #[error("no policy bundle for tenant {0}")]
    NotFound(TenantId),
    #[error("{0}")]
    Invalid(String),
}

/// Loads tenant bundles from a [`BundleSource`] and compiles them with one rule and one
/// evaluation time limit. Shared by the directory and every tenant actor.
pub struct PolicyLoader {
    source: Arc<dyn BundleSource>,
    rule: String,
    options: CompileOptions,
    observer: Arc<dyn ActivationObserver>,
    status: Mutex<HashMap<TenantId, BundleStatus>>,
    serving: RwLock<HashMap<TenantId, Serving>>,
    /// Every revision each tenant has activated, with the digest it named. Locked only while
    /// `status` is.
    revisions: Mutex<HashMap<TenantId, HashMap<String, String>>>,
}

/// The policy a tenant serves, published for readers that evaluate on their own thread (the
/// decision API) instead of asking the tenant's actor. `generation` changes with every
/// activation, so a reader's private clone knows when it is stale.
#[derive(Clone)]
pub struct Serving {
    pub generation: u64,
    pub policy: Arc<TenantPolicy>,
}

impl PolicyLoader {
    pub fn new(source: Arc<dyn BundleSource>, rule: impl Into<String>) -> Self {
        Self {
            source,
            rule: rule.into(),
            options: CompileOptions::default(),
            observer: Arc::new(Ignore),
            status: Mutex::default(),
            serving: RwLock::default(),
            revisions: Mutex::default(),
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
            let mut revisions = self.revisions.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Reads and compiles `tenant`'s bundle and records the outcome in its status. A panic in
    /// there (the Rego compiler meeting hostile or unusual input, a bundle source bug) is this
    /// tenant's error instead of unwinding into the caller, which may serve every tenant.
    /// Returns the policy with the generation it was published under: installs compare
    /// generations, so a slow load cannot replace a newer policy with an older one.
    pub fn load(&self, tenant: &TenantId) -> Result<(TenantPolicy, u64), ActivationError> {
        // Numbered before the bundle is read: of two loads, the one that read later is newer,
        // whichever finishes compiling first.
        let generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
        let compiled = catch_unwind(AssertUnwindSafe(|| {
            let bundle = self.source.load(tenant).map_err(|e| match e {
                LoadError::NotFound(_) => ActivationError::NotFound(tenant.clone()),
                other => ActivationError::Invalid(other.to_string()),
            })?;
            TenantPolicy::compile_with(&bundle, &self.rule, &self.options)
                .map_err(|e| ActivationError::Invalid(format!("tenant {tenant}: {e}")))
        }))
        .unwrap_or_else(|_| {
            Err(ActivationError::Invalid(format!(
                "loading the policy of tenant {tenant} panicked"
            )))
        });
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let mut revisions = self.revisions.lock().unwrap_or_else(|p| p.into_inner());
        // A revision names one content: decisions, logs and activations are stamped with it. A
        // change that keeps a revision already activated (an edit without a bump of
        // metadata.json, before or since a restart) would stamp different decisions alike, so
        // it is refused like any other invalid change.
        let compiled = compiled.and_then(|policy| {
            let named = revisions
                .get(tenant)
                .and_then(|known| known.get(policy.revision()));
            match named {
                Some(digest) if digest != policy.digest() => {
                    Err(ActivationError::Invalid(format!(
                        "tenant {tenant}: the bundle changed ({}), but its revision is still {}, \
                         which names other content activated before ({digest}): set a new \
                         revision in metadata.json, or remove it to stamp decisions with the \
                         content digest",
                        policy.digest(),
                        policy.revision(),
                    )))
                }
                _ => Ok(policy),
            }
        });
        match &compiled {
            Ok(policy) => {
                // Every successful load is installed by its caller (activation, hot reload, or
                // an actor restarting), so this is what the tenant serves from now on, unless a
                // load that read the bundle later has already finished.
                let mut serving = self.serving.write().unwrap_or_else(|p| p.into_inner());
                if serving
                    .get(tenant)
                    .is_some_and(|s| s.generation > generation)
                {
                    return compiled.map(|policy| (policy, generation));
                }
                serving.insert(
                    tenant.clone(),
                    Serving {
                        generation,
                        policy: Arc::new(policy.clone()),
                    },
                );
                drop(serving);
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
                    .is_some_and(|s| s.generation > generation) =>
            {
                // A load that read the bundle later has succeeded meanwhile: this one read a
                // half-written change, and its error is no longer the tenant's state.
            }
            Err(_)
                if status
                    .get(tenant)
                    .is_some_and(|s| s.error_generation > generation) => {}
            Err(e) => {
                // A tenant that never had a bundle has no status to report.
                if status.contains_key(tenant) || matches!(e, ActivationError::Invalid(_)) {
                    let entry = status.entry(tenant.clone()).or_default();
                    entry.error_generation = generation;
                    let error = e.to_string();
                    // A broken bundle is retried on traffic (every few seconds): report it once.
                    if entry.last_error.as_deref() != Some(error.as_str()) {
                        self.observer.rejected(tenant, &error);
                        entry.last_error_at = Some(Utc::now());
                    }
                    entry.last_error = Some(error);
                }
            }
        }
        compiled.map(|policy| (policy, generation))
    }

    pub fn status(&self, tenant: &TenantId) -> Option<BundleStatus> {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }

    /// The policy `tenant` serves, if it was ever activated.
    pub fn serving(&self, tenant: &TenantId) -> Option<Serving> {
        self.serving
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }

    /// Every tenant with a status, by tenant id.
    pub fn statuses(&self) -> Vec<(TenantId, BundleStatus)> {
        let mut all: Vec<_> = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(t, s)| (t.clone(), s.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}
