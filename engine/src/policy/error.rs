#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("bundle for tenant {0} has no .rego files")]
    NoModules(String),
    #[error("{file}: {message}")]
    Rego { file: String, message: String },
    #[error("{file}: package {package} is outside the tenant's namespace; use package {expected} (or below it)")]
    WrongPackage {
        file: String,
        package: String,
        expected: String,
    },
    #[error("pack {pack}: {error}")]
    Pack {
        pack: String,
        error: crate::compliance::PackError,
    },
    #[error("data.json must be a JSON object")]
    DataNotObject,
    #[error("invalid rule path {0:?}: use dot-separated identifiers such as \"decision\" or \"authz.allow\"")]
    BadRulePath(String),
    #[error("rule {rule} cannot be evaluated: {message}")]
    RuleUnusable { rule: String, message: String },
    #[error("evaluation failed: {0}")]
    Eval(String),
    /// Stopped by the evaluation time limit (or regorus's instruction limit): the rule ran
    /// long.
    #[error("evaluation stopped: {0}")]
    LimitExceeded(String),
    /// Stopped at once because a builtin would build a value past its bound
    /// (docs/decisions/0012), or a regular expression is too large to compile: the input was
    /// too large, not the rule slow.
    #[error("evaluation stopped: {0}")]
    ValueTooLarge(String),
    /// A bug in an evaluator (ours or regorus's), caught: the policy copy that ran it may be in
    /// any state and is replaced.
    #[error("policy evaluation panicked")]
    Panicked,
    #[error(
        "decision_log mask {0:?} must be a JSON pointer below /input/, e.g. \"/input/password\""
    )]
    BadMask(String),
}

impl PolicyError {
    /// Sorts a regorus evaluation error: a guard-rail stop is told apart from a policy error.
    pub(crate) fn from_eval(e: anyhow::Error) -> Self {
        match e.downcast_ref::<regorus::LimitError>() {
            Some(limit @ regorus::LimitError::TimeLimitExceeded { .. }) => {
                return Self::LimitExceeded(limit.to_string())
            }
            Some(limit) => return Self::ValueTooLarge(limit.to_string()),
            None => {}
        }
        // The interpreter passes on a bounded builtin's refusal as text only.
        let message = e.to_string();
        match super::bounded_range::take_refusal().filter(|r| message.contains(r.as_str())) {
            Some(reason) => Self::ValueTooLarge(reason),
            None => Self::Eval(message),
        }
    }
}
