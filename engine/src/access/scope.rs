//! Scopes: what a token may do, and for which tenants.
//!
//! `admin` is every tenant and the engine itself (tokens, all-tenant views). A tenant scope is
//! `{role}:{tenant}`: `query:acme` asks acme's policy questions, `read:acme` reads acme's events,
//! decisions, dead letters and bundle status, `approve:acme` answers acme's approval requests,
//! `signal:acme` sends trust signals about acme's principals and agents,
//! `comply:acme` works acme's compliance violations (acknowledge, suppress, resolve, remediate)
//! and runs its scans,
//! `admin:acme` does all of these and acts on acme's data (replaying its dead letters).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tenant::TenantId;

/// What a request wants to do with a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Evaluate the tenant's policy (the decision API).
    Query,
    /// Read the tenant's records and status.
    Read,
    /// Change the tenant's records (replay dead letters, and what later capabilities add).
    Administer,
    /// Answer the tenant's approval requests (approve or deny).
    Approve,
    /// Send trust signals about the tenant's principals and agents.
    Signal,
    /// Work the tenant's compliance violations and run its scans.
    Comply,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Query => "query",
            Permission::Read => "read",
            Permission::Administer => "administer",
            Permission::Approve => "approve",
            Permission::Signal => "signal",
            Permission::Comply => "comply",
        }
    }
}

/// A role held over one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Query,
    Read,
    Approve,
    Signal,
    Comply,
    Admin,
}

impl Role {
    fn covers(self, p: Permission) -> bool {
        matches!(
            (self, p),
            (Role::Admin, _)
                | (Role::Read, Permission::Read)
                | (Role::Query, Permission::Query)
                | (Role::Approve, Permission::Approve)
                | (Role::Signal, Permission::Signal)
                | (Role::Comply, Permission::Comply)
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            Role::Query => "query",
            Role::Read => "read",
            Role::Approve => "approve",
            Role::Signal => "signal",
            Role::Comply => "comply",
            Role::Admin => "admin",
        }
    }
}

/// One scope, as written on a token.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every tenant, and the engine's own administration.
    Admin,
    Tenant {
        role: Role,
        tenant: TenantId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope {0:?} is not one of: admin, query:<tenant>, read:<tenant>, approve:<tenant>, signal:<tenant>, comply:<tenant>, admin:<tenant>")]
    Unknown(String),
    #[error("scope {scope:?}: {reason}")]
    Tenant { scope: String, reason: String },
    #[error("a token needs at least one scope")]
    None,
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, ScopeError> {
        if s == "admin" {
            return Ok(Scope::Admin);
        }
        let (role, tenant) = s
            .split_once(':')
            .ok_or_else(|| ScopeError::Unknown(s.to_owned()))?;
        let role = match role {
            "query" => Role::Query,
            "read" => Role::Read,
            "approve" => Role::Approve,
            "signal" => Role::Signal,
            "comply" => Role::Comply,
            "admin" => Role::Admin,
            _ => return Err(ScopeError::Unknown(s.to_owned())),
        };
        let tenant = TenantId::parse(tenant).map_err(|e| ScopeError::Tenant {
            scope: s.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Scope::Tenant { role, tenant })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Admin => f.write_str("admin"),
            Scope::Tenant { role, tenant } => write!(f, "{}:{tenant}", role.as_str()),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which tenants a caller may see for some permission: what list endpoints filter by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Visible {
    All,
    Only(BTreeSet<TenantId>),
}

impl Visible {
    pub fn contains(&self, tenant: &TenantId) -> bool {
        match self {
            Visible::All => true,
            Visible::Only(set) => set.contains(tenant),
        }
    }
}

/// The scopes a caller holds.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Grants(BTreeSet<Scope>);

impl Grants {
    /// Parses scopes as written (`admin`, `read:acme`, ...); at least one is needed.
    pub fn parse<S: AsRef<str>>(scopes: &[S]) -> Result<Self, ScopeError> {
        let set = scopes
            .iter()
            .map(|s| s.as_ref().trim().parse())
            .collect::<Result<BTreeSet<Scope>, _>>()?;
        if set.is_empty() {
            return Err(ScopeError::None);
        }
        Ok(Self(set))
    }

    /// Every tenant and the engine's administration: what a caller has when authentication is
    /// switched off.
    pub fn everything() -> Self {
        Self(BTreeSet::from([Scope::Admin]))
    }

    pub fn is_admin(&self) -> bool {
        self.0.contains(&Scope::Admin)
    }

    pub fn allows(&self, permission: Permission, tenant: &TenantId) -> bool {
        self.0.iter().any(|s| match s {
            Scope::Admin => true,
            Scope::Tenant { role, tenant: t } => t == tenant && role.covers(permission),
        })
    }

    pub fn visible(&self, permission: Permission) -> Visible {
        if self.is_admin() {
            return Visible::All;
        }
        Visible::Only(
            self.0
                .iter()
                .filter_map(|s| match s {
                    Scope::Tenant { role, tenant } if role.covers(permission) => {
                        Some(tenant.clone())
                    }
                    _ => None,
                })
                .collect(),
        )
    }

    pub fn scopes(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// The scopes as written, in a stable order.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(Scope::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    #[test]
    fn scopes_parse_and_print_as_written() {
        for s in ["admin", "query:acme", "read:acme", "admin:globex"] {
            assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }
        for bad in [
            "",
            "root",
            "read",
            "read:",
            "read:Acme",
            "write:acme",
            "admin:*",
            "read:a:b",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad:?}");
        }
        assert_eq!(Grants::parse::<&str>(&[]), Err(ScopeError::None));
    }

    #[test]
    fn a_tenant_role_covers_only_its_tenant_and_its_permissions() {
        let g = Grants::parse(&["query:acme", "read:globex"]).unwrap();
        assert!(g.allows(Permission::Query, &t("acme")));
        assert!(!g.allows(Permission::Read, &t("acme")));
        assert!(g.allows(Permission::Read, &t("globex")));
        assert!(!g.allows(Permission::Query, &t("globex")));
        assert!(!g.allows(Permission::Administer, &t("globex")));
        assert!(!g.allows(Permission::Read, &t("initech")));
        assert!(!g.is_admin());

        let a = Grants::parse(&["admin:acme"]).unwrap();
        for p in [Permission::Query, Permission::Read, Permission::Administer] {
            assert!(a.allows(p, &t("acme")));
            assert!(!a.allows(p, &t("globex")));
        }
        assert!(!a.is_admin());
    }

    #[test]
    fn the_admin_scope_covers_every_tenant() {
        let g = Grants::parse(&["admin"]).unwrap();
        assert!(g.is_admin());
        assert!(g.allows(Permission::Administer, &t("anyone")));
        assert_eq!(g.visible(Permission::Read), Visible::All);
        assert_eq!(Grants::everything(), g);
    }

    #[test]
    fn visible_tenants_follow_the_permission() {
        let g = Grants::parse(&["query:acme", "read:globex", "admin:initech"]).unwrap();
        let Visible::Only(read) = g.visible(Permission::Read) else {
            panic!("not all")
        };
        assert_eq!(read, BTreeSet::from([t("globex"), t("initech")]));
        assert!(g.visible(Permission::Query).contains(&t("acme")));
        assert!(!g.visible(Permission::Query).contains(&t("globex")));
    }
}
