//! What names one model line: a tenant's CloudTrail model, or its device model.

use serde::Serialize;

use super::ModelScope;
use crate::TenantId;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ModelKey {
    pub tenant: TenantId,
    pub scope: ModelScope,
}

impl std::fmt::Display for ModelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tenant, self.scope)
    }
}
