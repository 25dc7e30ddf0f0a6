//! Tenant policy: Rego bundles compiled into one isolated regorus engine per tenant.

mod bundle;
mod decision;
mod error;
mod input;
mod tenant_policy;

pub use bundle::Bundle;
pub use decision::Decision;
pub use error::PolicyError;
pub use input::{PolicyContext, ProtectionLevel};
pub use tenant_policy::TenantPolicy;
