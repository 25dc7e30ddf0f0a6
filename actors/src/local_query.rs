//! Decision API queries answered on the caller's own thread.
//!
//! Asking the tenant's actor costs a cross-thread wake-up per query, several times the cost of
//! the evaluation itself (docs/benchmarks.md). Queries do not change a policy, so each calling
//! thread keeps its own clone of every tenant's *serving* policy (published by the loader on each
//! activation) and evaluates locally. The actor stays the owner: it judges the tenant's events
//! and is what reloads replace; a clone is dropped as soon as a newer activation is published.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use portcullis_engine::policy::PolicyContext;
use portcullis_engine::{PolicyError, TenantId, TenantPolicy};
use tracing::error;

use crate::messages::{Query, QueryReply};
use crate::{DirectoryError, TenantDirectory};

thread_local! {
    /// `(generation, private clone)` per tenant, for this thread.
    static LOCAL: RefCell<HashMap<TenantId, (u64, TenantPolicy)>> = RefCell::default();
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The evaluation failed (time limit, a runaway or broken rule), with what the decision log
    /// keeps of the query.
    #[error("{}", .0.error)]
    Failed(Box<FailedQuery>),
    /// Anything else: a panic, the slow lane gone.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("tenant {0} has as many queries on the slow lane as it may (its rules recently ran long); try again shortly")]
    Throttled(TenantId),
}

/// A query whose evaluation failed, as the decision log keeps it.
#[derive(Debug)]
pub struct FailedQuery {
    pub error: PolicyError,
    /// The full rule path asked for (`data.tenants.acme.allow`).
    pub path: String,
    /// The revision of the policy that failed.
    pub revision: String,
    /// The input with the tenant's mask applied, and the pointers it removed.
    pub logged_input: Option<serde_json::Value>,
    pub erased: Vec<String>,
    /// How long it ran before it failed.
    pub eval_micros: u64,
}

impl FailedQuery {
    /// Whether the evaluation was stopped by the time limit.
    pub fn hit_the_limit(&self) -> bool {
        matches!(self.error, PolicyError::LimitExceeded(_))
    }

    /// Whether the evaluation panicked (the policy copy that ran it must be replaced).
    pub fn panicked(&self) -> bool {
        self.error == PolicyError::Panicked
    }
}

impl TenantDirectory {
    /// Answers `q` for `tenant` on this thread (activating the tenant on first use).
    pub fn query_here(&self, tenant: &TenantId, q: Query) -> Result<QueryReply, QueryError> {
        let serving = match self.loader().serving(tenant) {
            Some(s) => s,
            None => {
                self.get(tenant)?;
                self.loader()
                    .serving(tenant)
                    .ok_or_else(|| DirectoryError::NoPolicy {
                        tenant: tenant.to_string(),
                        reason: "activated, but no serving policy was published".into(),
                    })?
            }
        };
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let fresh = local
                .get(tenant)
                .is_some_and(|(generation, _)| *generation == serving.generation);
            if !fresh {
                local.insert(
                    tenant.clone(),
                    (serving.generation, TenantPolicy::clone(&serving.policy)),
                );
            }
            let (_, policy) = local.get_mut(tenant).expect("just inserted");
            // `answer` catches a panicking evaluation; this, anything else.
            let reply = catch_unwind(AssertUnwindSafe(|| answer(policy, q)));
            let panicked = match &reply {
                Ok(Ok(_)) => false,
                Ok(Err(failed)) => failed.panicked(),
                Err(_) => true,
            };
            if panicked {
                // The clone may be in any state: forget it, the next query clones afresh.
                error!(%tenant, "policy query panicked; dropping this thread's copy");
                local.remove(tenant);
            }
            match reply {
                Ok(reply) => reply.map_err(QueryError::Failed),
                Err(_) => Err(PolicyError::Panicked.into()),
            }
        })
    }
}

/// Evaluates `q`; the input comes back as it may be logged (the tenant's mask applied), with
/// the answer or with why there is none.
pub(crate) fn answer(policy: &mut TenantPolicy, q: Query) -> Result<QueryReply, Box<FailedQuery>> {
    let context = PolicyContext::neutral(q.now);
    let started = Instant::now();
    // A panicking evaluation fails this query like any other error, so that it is logged with
    // its input; the caller sees `Panicked` and replaces the policy copy.
    let answer = catch_unwind(AssertUnwindSafe(|| {
        policy.query(&q.path, q.input.as_ref(), &context)
    }))
    .unwrap_or(Err(PolicyError::Panicked));
    let mut logged_input = q.input;
    let mut erased = Vec::new();
    if let Some(input) = logged_input.as_mut() {
        if !policy.mask().is_empty() {
            erased = policy.mask().erased(input);
            policy.mask().apply(input);
        }
    }
    match answer {
        Ok(answer) => Ok(QueryReply {
            answer,
            logged_input,
            erased,
        }),
        Err(error) => Err(Box::new(FailedQuery {
            error,
            path: q.path.under(&policy.tenant().rego_package()),
            revision: policy.revision().to_owned(),
            logged_input,
            erased,
            eval_micros: started.elapsed().as_micros().try_into().unwrap_or(u64::MAX),
        })),
    }
}
