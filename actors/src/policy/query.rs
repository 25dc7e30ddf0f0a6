//! Decision API queries, answered on the caller's own thread from the store's serving policy.
//!
//! Asking the tenant's actor would cost a cross-thread wake-up per query, several times the
//! cost of the evaluation itself (docs/decisions/0006). Queries change nothing, so they run on
//! an evaluator of the tenant's published policy (docs/decisions/0014).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use chrono::{DateTime, Utc};
use portcullis_engine::policy::{Answer, PolicyContext, RulePath};
use portcullis_engine::{PolicyError, TenantId};
use tracing::error;

use super::{PolicyUnavailable, ServingPolicy};

/// A decision API query: evaluate `path` (below the tenant's package) on `input`.
pub struct Query {
    pub path: RulePath,
    pub input: Option<serde_json::Value>,
    pub now: DateTime<Utc>,
    /// The protection of the query's unit, for `input.context`; `None`: permissive.
    pub protection: Option<portcullis_engine::protection::UnitProtection>,
    /// The external trust signals that last about the input's `principal` (empty: none).
    pub signals: std::sync::Arc<[portcullis_engine::signals::ActiveSignal]>,
}

/// A query's answer, with the input as it may be logged (the tenant's mask applied).
#[derive(Debug)]
pub struct QueryReply {
    pub answer: Answer,
    pub logged_input: Option<serde_json::Value>,
    /// JSON pointers the mask removed from `logged_input`.
    pub erased: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Unavailable(#[from] PolicyUnavailable),
    /// The evaluation failed (time limit, a runaway or broken rule), with what the decision log
    /// keeps of the query.
    #[error("{}", .0.error)]
    Failed(Box<FailedQuery>),
    /// Anything else: the slow lane gone, a failed activation task.
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
}

/// Answers `q` on this thread with an evaluator of `serving`; the input comes back as it may be
/// logged (the tenant's mask applied), with the answer or with why there is none. A panicking
/// evaluation fails this query like any other error, so that it is logged with its input; the
/// evaluator it ran on is dropped.
pub fn answer_query(serving: &ServingPolicy, q: Query) -> Result<QueryReply, QueryError> {
    let mut context = PolicyContext::neutral(q.now);
    context.set_protection(q.protection);
    context.principal_trust =
        portcullis_engine::signals::trust_after(context.principal_trust, &q.signals, q.now);
    context.signals = q.signals;
    let started = Instant::now();
    let answer = catch_unwind(AssertUnwindSafe(|| {
        serving.with_evaluator(|p| p.query(&q.path, q.input.as_ref(), &context))
    }))
    .unwrap_or_else(|_| {
        error!(tenant = %serving.policy().tenant(), "policy query panicked");
        Err(PolicyError::Panicked)
    });
    let policy = serving.policy();
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
        Err(error) => Err(QueryError::Failed(Box::new(FailedQuery {
            error,
            path: q.path.under(&policy.tenant().rego_package()),
            revision: policy.revision().to_owned(),
            logged_input,
            erased,
            eval_micros: started.elapsed().as_micros().try_into().unwrap_or(u64::MAX),
        }))),
    }
}
