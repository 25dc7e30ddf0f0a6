use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Addr, Arbiter, Supervisor};
use portcullis_engine::{TenantId, TenantPolicy};
use tracing::{info, warn};

use crate::load::ActivationError;
use crate::messages::Install;
use crate::{PolicyLoader, TenantActor};

/// How long a failed activation is remembered before the bundle is read again. Keeps a tenant
/// with a broken bundle from costing a disk read per event (a hot reload retries at once).
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DirectoryError {
    #[error("no policy bundle for tenant {0}")]
    Unknown(TenantId),
    #[error("tenant {tenant} has no usable policy: {reason}")]
    NoPolicy { tenant: String, reason: String },
}

/// Finds or activates the tenant actor for a tenant id.
pub struct TenantDirectory {
    arbiters: Vec<Arbiter>,
    loader: Arc<PolicyLoader>,
    mailbox: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    live: HashMap<TenantId, Addr<TenantActor>>,
    failed: HashMap<TenantId, (Instant, DirectoryError)>,
    /// One gate per tenant being activated by [`TenantDirectory::get`].
    loading: HashMap<TenantId, Arc<Mutex<()>>>,
}

impl State {
    /// The live actor, or the recent failure, if either is known.
    fn known(&self, tenant: &TenantId) -> Option<Result<Addr<TenantActor>, DirectoryError>> {
        if let Some(addr) = self.live.get(tenant).filter(|a| a.connected()) {
            return Some(Ok(addr.clone()));
        }
        match self.failed.get(tenant) {
            Some((at, err)) if at.elapsed() < RETRY_FAILED_AFTER => Some(Err(err.clone())),
            _ => None,
        }
    }
}

impl TenantDirectory {
    /// Starts `workers` arbiters (threads). Must be called inside a running actix `System`.
    pub fn new(workers: usize, loader: Arc<PolicyLoader>, mailbox: usize) -> Self {
        let arbiters = (0..workers.max(1)).map(|_| Arbiter::new()).collect();
        Self {
            arbiters,
            loader,
            mailbox: mailbox.max(1),
            state: Mutex::default(),
        }
    }

    pub fn rule(&self) -> &str {
        self.loader.rule()
    }

    pub fn loader(&self) -> &Arc<PolicyLoader> {
        &self.loader
    }

    /// The live actor for `tenant`, activating it (load + compile) on first use.
    pub fn get(&self, tenant: &TenantId) -> Result<Addr<TenantActor>, DirectoryError> {
        let gate = {
            let mut state = self.lock();
            if let Some(known) = state.known(tenant) {
                return known;
            }
            state.loading.entry(tenant.clone()).or_default().clone()
        };
        // Compile outside the directory lock, so that other tenants' lookups go on meanwhile
        // (a large bundle takes a while), and once per tenant: callers arriving during the
        // load wait for its outcome instead of compiling the same bundle again.
        let _one_load = gate.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = self.lock().known(tenant) {
            return known;
        }
        let loaded = self.loader.load(tenant);
        let mut state = self.lock();
        // Only this load's gate: a caller that found nothing known after waiting may have
        // opened a newer one.
        if state
            .loading
            .get(tenant)
            .is_some_and(|g| Arc::ptr_eq(g, &gate))
        {
            state.loading.remove(tenant);
        }
        match loaded {
            Ok((policy, generation)) => {
                state.failed.remove(tenant);
                // A hot reload may have started the actor meanwhile; installs compare
                // generations, so whichever policy is newer serves.
                match state.live.get(tenant).filter(|a| a.connected()) {
                    Some(addr) => {
                        addr.do_send(Install { policy, generation });
                        Ok(addr.clone())
                    }
                    None => Ok(self.start(&mut state, policy, generation)),
                }
            }
            Err(e) => {
                let err = directory_error(tenant, e);
                // Tenant ids come from requests too: forget what has expired, so the cache
                // holds at most the ids seen in the last few seconds.
                state
                    .failed
                    .retain(|_, (at, _)| at.elapsed() < RETRY_FAILED_AFTER);
                state
                    .failed
                    .insert(tenant.clone(), (Instant::now(), err.clone()));
                Err(err)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads `tenant`'s bundle again (hot reload). A valid one replaces the serving policy, or
    /// activates the tenant; an invalid one is reported and the serving policy, if any, stays.
    pub fn reload(&self, tenant: &TenantId) -> Result<(), DirectoryError> {
        // Compile without holding the lock: other tenants' lookups go on meanwhile.
        let loaded = self.loader.load(tenant);
        let mut state = self.lock();
        match loaded {
            Ok((policy, generation)) => {
                state.failed.remove(tenant);
                match state.live.get(tenant).filter(|a| a.connected()) {
                    // `do_send`: an Install must not be lost to a full mailbox; there is one
                    // per reload, so it cannot pile up.
                    Some(addr) => addr.do_send(Install { policy, generation }),
                    None => {
                        self.start(&mut state, policy, generation);
                    }
                }
                Ok(())
            }
            Err(e) => {
                let err = directory_error(tenant, e);
                if state.live.contains_key(tenant) {
                    warn!(%tenant, error = %err, "bundle refused; the previous revision keeps serving");
                } else {
                    state
                        .failed
                        .insert(tenant.clone(), (Instant::now(), err.clone()));
                }
                Err(err)
            }
        }
    }

    fn start(&self, state: &mut State, policy: TenantPolicy, generation: u64) -> Addr<TenantActor> {
        let tenant = policy.tenant().clone();
        info!(%tenant, revision = policy.revision(), rule = policy.rule_path(), "tenant actor activated");
        let arbiter = &self.arbiters[self.placement(&tenant)];
        let (loader, mailbox) = (self.loader.clone(), self.mailbox);
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            TenantActor::new(policy, generation, loader, mailbox)
        });
        state.live.insert(tenant, addr.clone());
        addr
    }

    /// Which arbiter a tenant lives on: stable for the life of the directory.
    fn placement(&self, tenant: &TenantId) -> usize {
        let mut h = DefaultHasher::new();
        tenant.hash(&mut h);
        (h.finish() % self.arbiters.len() as u64) as usize
    }

    pub fn active_tenants(&self) -> usize {
        self.state.lock().map(|s| s.live.len()).unwrap_or(0)
    }

    /// Stops the arbiters; their actors finish the message in hand and stop.
    pub fn shutdown(&self) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .live
            .clear();
        for a in &self.arbiters {
            a.stop();
        }
    }
}

fn directory_error(tenant: &TenantId, e: ActivationError) -> DirectoryError {
    match e {
        ActivationError::NotFound(t) => DirectoryError::Unknown(t),
        ActivationError::Invalid(reason) => DirectoryError::NoPolicy {
            tenant: tenant.to_string(),
            reason,
        },
    }
}

impl Drop for TenantDirectory {
    fn drop(&mut self) {
        self.shutdown();
    }
}
