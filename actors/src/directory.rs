use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Addr, Arbiter, Supervisor};
use portcullis_engine::TenantId;
use tracing::info;

use crate::load::load_policy;
use crate::{BundleSource, TenantActor};

/// How long a failed activation is remembered before the bundle is read again. Keeps a tenant
/// with a broken bundle from costing a disk read per event.
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DirectoryError {
    #[error("tenant {tenant} has no usable policy: {reason}")]
    NoPolicy { tenant: String, reason: String },
}

/// Finds or activates the tenant actor for a tenant id.
pub struct TenantDirectory {
    arbiters: Vec<Arbiter>,
    source: Arc<dyn BundleSource>,
    rule: String,
    mailbox: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    live: HashMap<TenantId, Addr<TenantActor>>,
    failed: HashMap<TenantId, (Instant, String)>,
}

impl TenantDirectory {
    /// Starts `workers` arbiters (threads). Must be called inside a running actix `System`.
    pub fn new(
        workers: usize,
        source: Arc<dyn BundleSource>,
        rule: impl Into<String>,
        mailbox: usize,
    ) -> Self {
        let arbiters = (0..workers.max(1)).map(|_| Arbiter::new()).collect();
        Self {
            arbiters,
            source,
            rule: rule.into(),
            mailbox: mailbox.max(1),
            state: Mutex::default(),
        }
    }

    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The live actor for `tenant`, activating it (load + compile) on first use.
    pub fn get(&self, tenant: &TenantId) -> Result<Addr<TenantActor>, DirectoryError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(addr) = state.live.get(tenant) {
            if addr.connected() {
                return Ok(addr.clone());
            }
        }
        if let Some((at, reason)) = state.failed.get(tenant) {
            if at.elapsed() < RETRY_FAILED_AFTER {
                return Err(DirectoryError::NoPolicy {
                    tenant: tenant.to_string(),
                    reason: reason.clone(),
                });
            }
        }
        let compiled = load_policy(self.source.as_ref(), tenant, &self.rule);
        let policy = match compiled {
            Ok(p) => p,
            Err(reason) => {
                state
                    .failed
                    .insert(tenant.clone(), (Instant::now(), reason.clone()));
                return Err(DirectoryError::NoPolicy {
                    tenant: tenant.to_string(),
                    reason,
                });
            }
        };
        state.failed.remove(tenant);
        info!(%tenant, revision = policy.revision(), rule = policy.rule_path(), "tenant actor activated");
        let arbiter = &self.arbiters[self.placement(tenant)];
        let (source, rule, mailbox) = (self.source.clone(), self.rule.clone(), self.mailbox);
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            TenantActor::new(policy, source, rule, mailbox)
        });
        state.live.insert(tenant.clone(), addr.clone());
        Ok(addr)
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

impl Drop for TenantDirectory {
    fn drop(&mut self) {
        self.shutdown();
    }
}
