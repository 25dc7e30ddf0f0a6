//! Which tenants exist and which AWS accounts belong to each.

use std::collections::{HashMap, HashSet};

use crate::TenantId;

/// A snapshot of the tenant registry (its system of record is Postgres).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantRegistry {
    tenants: HashSet<TenantId>,
    accounts: HashMap<String, TenantId>,
}

impl TenantRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_tenant(&mut self, tenant: TenantId) {
        self.tenants.insert(tenant);
    }

    /// Maps an AWS account to a tenant, registering the tenant too.
    pub fn add_account(&mut self, account: impl Into<String>, tenant: TenantId) {
        self.tenants.insert(tenant.clone());
        self.accounts.insert(account.into(), tenant);
    }

    pub fn tenant_for_account(&self, account: &str) -> Option<&TenantId> {
        self.accounts.get(account)
    }

    pub fn contains(&self, tenant: &TenantId) -> bool {
        self.tenants.contains(tenant)
    }

    pub fn tenant_count(&self) -> usize {
        self.tenants.len()
    }

    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }
}
