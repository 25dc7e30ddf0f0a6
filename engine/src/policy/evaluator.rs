//! How a tenant's rules are evaluated, and the other knobs of compiling a bundle.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::DEFAULT_EVAL_TIMEOUT;

/// Which regorus evaluator answers, from safest to fastest. Each falls back to the one before
/// it when the bundle does not lend itself (docs/decisions/0007-rule-dispatch.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Evaluator {
    /// regorus's tree-walking interpreter: the reference, and the slowest.
    Interpreter,
    /// regorus's register VM (about 3.5× faster), checked against the interpreter at load.
    Vm,
    /// The VM, with the tenant rule compiled once per CloudTrail event name so that an event
    /// runs only the rules its name can reach.
    #[default]
    Dispatch,
}

impl std::fmt::Display for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Interpreter => "interpreter",
            Self::Vm => "vm",
            Self::Dispatch => "dispatch",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileOptions {
    /// Time limit of every evaluation, the load-time probe included.
    pub eval_timeout: Duration,
    pub evaluator: Evaluator,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            eval_timeout: DEFAULT_EVAL_TIMEOUT,
            evaluator: Evaluator::default(),
        }
    }
}

/// Which evaluator a compiled bundle actually uses, for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvaluatorStatus {
    pub evaluator: Evaluator,
    /// Event-name variants of the tenant rule (0 unless `evaluator` is `dispatch`).
    pub dispatch_variants: usize,
    /// Why a faster evaluator was not used, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}
