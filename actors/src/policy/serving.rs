//! One published generation of a tenant's compiled policy, and the evaluators that run it.

use std::sync::Mutex;

use portcullis_engine::TenantPolicy;

/// Most spare evaluators kept per generation: about one per thread that evaluates at once
/// (HTTP workers, arbiters, the slow lane); more are dropped when handed back.
const MAX_SPARE: usize = 32;

/// A tenant's policy as the [`crate::PolicyStore`] publishes it: compiled once, read by
/// everyone. regorus evaluates through `&mut self`, so evaluation runs on an *evaluator*: a
/// cheap clone of the compiled policy (shared modules and program, its own VM state), taken from
/// this generation's spares and handed back after. Evaluators belong to their generation: when
/// a newer one is published, the old generation and its spares go with the last reader.
pub struct ServingPolicy {
    generation: u64,
    policy: TenantPolicy,
    spare: Mutex<Vec<TenantPolicy>>,
}

impl ServingPolicy {
    pub(crate) fn new(policy: TenantPolicy, generation: u64) -> Self {
        Self {
            generation,
            policy,
            spare: Mutex::default(),
        }
    }

    /// The compiled policy, for what it says of itself (tenant, revision, digest, mask). It is
    /// never evaluated: see [`Self::with_evaluator`].
    pub fn policy(&self) -> &TenantPolicy {
        &self.policy
    }

    /// Which load published it: of two generations, the larger read its bundle later.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Runs `f` on an evaluator of this generation. The evaluator goes back to the spares only
    /// if `f` returns: one that was unwinding from a panic may be in any state, and is dropped.
    pub fn with_evaluator<R>(&self, f: impl FnOnce(&mut TenantPolicy) -> R) -> R {
        let spare = self.lock().pop();
        let mut evaluator = spare.unwrap_or_else(|| self.policy.clone());
        let out = f(&mut evaluator);
        let mut spares = self.lock();
        if spares.len() < MAX_SPARE {
            spares.push(evaluator);
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TenantPolicy>> {
        self.spare.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use portcullis_engine::policy::RulePath;
    use portcullis_engine::{Bundle, TenantId};

    use super::*;

    fn serving() -> ServingPolicy {
        let bundle = Bundle {
            tenant: TenantId::parse("acme").unwrap(),
            modules: vec![(
                "p.rego".into(),
                "package tenants.acme\ndecision := 1".into(),
            )],
            data: None,
            revision: None,
            mask: Vec::new(),
            packs: Vec::new(),
        };
        ServingPolicy::new(TenantPolicy::compile(&bundle, "decision").unwrap(), 1)
    }

    #[test]
    fn evaluators_are_reused_and_one_that_panicked_is_dropped() {
        let s = serving();
        let ctx = portcullis_engine::policy::PolicyContext::neutral(chrono::Utc::now());
        let path = RulePath::from_url("decision").unwrap();
        let answer = s.with_evaluator(|p| p.query(&path, None, &ctx).unwrap());
        assert_eq!(answer.result, Some(serde_json::json!(1)));
        assert_eq!(s.lock().len(), 1, "handed back");
        s.with_evaluator(|_| ());
        assert_eq!(s.lock().len(), 1, "the spare was taken and handed back");
        let panicked = catch_unwind(AssertUnwindSafe(|| s.with_evaluator(|_| panic!("boom"))));
        assert!(panicked.is_err());
        assert_eq!(s.lock().len(), 0, "the evaluator that panicked is gone");
    }
}
