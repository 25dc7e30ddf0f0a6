use std::panic::{catch_unwind, AssertUnwindSafe};

use portcullis_engine::{TenantId, TenantPolicy};

use crate::BundleSource;

/// Reads and compiles a tenant's bundle. A panic anywhere in that (the Rego compiler meeting
/// hostile or unusual input, a bundle source bug) is reported as an error for this tenant instead
/// of unwinding into the caller, which may be a source task serving every tenant.
pub(crate) fn load_policy(
    source: &dyn BundleSource,
    tenant: &TenantId,
    rule: &str,
) -> Result<TenantPolicy, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let bundle = source.load(tenant).map_err(|e| e.to_string())?;
        TenantPolicy::compile(&bundle, rule).map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|_| Err(format!("loading the policy of tenant {tenant} panicked")))
}
