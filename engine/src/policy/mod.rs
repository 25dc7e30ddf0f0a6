//! Tenant policy: Rego bundles compiled into one isolated regorus engine per tenant.

mod bounded_range;
mod bundle;
pub(crate) mod decision;
mod dispatch;
mod dispatch_plan;
mod error;
mod evaluator;
mod input;
mod mask;
mod namespace;
mod path;
mod program;
mod query;
mod query_body;
mod rego_value;
mod tenant_policy;

pub(crate) use bounded_range::guard_interpreter;
pub use bounded_range::MAX_RANGE_ELEMENTS;
pub(crate) use bundle::hash_modules;
pub use bundle::Bundle;
pub use decision::{allowed_by, Decision};
pub(crate) use dispatch::Dispatch;
pub use error::PolicyError;
pub use evaluator::{CompileOptions, Evaluator, EvaluatorStatus};
pub use input::{event_document, PolicyContext, ProtectionLevel};
pub use mask::InputMask;
pub(crate) use namespace::add_modules_within;
pub use path::RulePath;
pub(crate) use program::Program;
pub use query::Answer;
pub use query_body::{query_input, QueryBodyError};
pub(crate) use rego_value::to_rego as to_rego_value;
pub(crate) use tenant_policy::timer;
pub(crate) use tenant_policy::to_json as value_to_json;
pub use tenant_policy::{TenantPolicy, DEFAULT_EVAL_TIMEOUT};
