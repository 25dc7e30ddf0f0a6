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
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(addr) = state.live.get(tenant) {
            if addr.connected() {
                return Ok(addr.clone());
            }
        }
        if let Some((at, err)) = state.failed.get(tenant) {
            if at.elapsed() < RETRY_FAILED_AFTER {
                return Err(err.clone());
            }
        }
        match self.loader.load(tenant) {
            Ok((policy, generation)) => {
                state.failed.remove(tenant);
                Ok(self.start(&mut state, policy, generation))
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

    /// Reads `tenant`'s bundle again (hot reload). A valid one replaces the serving policy, or
    /// activates the tenant; an invalid one is reported and the serving policy, if any, stays.
    pub fn reload(&self, tenant: &TenantId) -> Result<(), DirectoryError> {
        // Compile without holding the lock: other tenants' lookups go on meanwhile.
        let loaded = self.loader.load(tenant);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
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
