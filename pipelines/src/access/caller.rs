//! Who a request comes from, once its token has been checked.

use chrono::{DateTime, Utc};
use portcullis_engine::access::{Grants, Permission, Visible};
use portcullis_engine::TenantId;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Caller {
    /// `None` when authentication is off.
    pub token_id: Option<Uuid>,
    pub name: String,
    pub grants: Grants,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Caller {
    /// Everyone, when authentication is switched off (`http.auth = false`).
    pub fn anonymous() -> Self {
        Self {
            token_id: None,
            name: "anonymous (authentication is off)".into(),
            grants: Grants::everything(),
            expires_at: None,
        }
    }

    pub fn allows(&self, permission: Permission, tenant: &TenantId) -> bool {
        self.grants.allows(permission, tenant)
    }

    pub fn is_admin(&self) -> bool {
        self.grants.is_admin()
    }

    pub fn visible(&self, permission: Permission) -> Visible {
        self.grants.visible(permission)
    }
}
