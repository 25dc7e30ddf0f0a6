use portcullis_engine::{Bundle, TenantId};

/// Where tenant bundles come from. The pipelines crate reads them from disk; tests may build
/// them in memory. Implementations do their own I/O; actors only call `load`.
pub trait BundleSource: Send + Sync + 'static {
    fn load(&self, tenant: &TenantId) -> Result<Bundle, LoadError>;
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("no policy bundle for tenant {0}")]
    NotFound(String),
    #[error("cannot read the bundle of tenant {tenant}: {message}")]
    Unreadable { tenant: String, message: String },
}
