//! Tenants and the AWS accounts that belong to them.

use portcullis_engine::{TenantId, TenantRegistry};
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("AWS account id {0:?} must be exactly 12 digits")]
    BadAccount(String),
    #[error("AWS account {account} already belongs to tenant {owner}; remove it there first")]
    AccountTaken { account: String, owner: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub async fn load_registry(pool: &PgPool) -> Result<TenantRegistry, sqlx::Error> {
    let mut reg = TenantRegistry::new();
    let tenants: Vec<(String,)> = sqlx::query_as("SELECT tenant_id FROM tenants")
        .fetch_all(pool)
        .await?;
    for (t,) in tenants {
        // The table's CHECK enforces the same pattern; skip anything that slipped in by hand.
        if let Ok(id) = TenantId::parse(&t) {
            reg.add_tenant(id);
        }
    }
    let accounts: Vec<(String, String)> =
        sqlx::query_as("SELECT account_id, tenant_id FROM tenant_accounts")
            .fetch_all(pool)
            .await?;
    for (account, t) in accounts {
        if let Ok(id) = TenantId::parse(&t) {
            reg.add_account(account, id);
        }
    }
    Ok(reg)
}

/// Registers a tenant (idempotent) and maps AWS accounts to it.
pub async fn add_tenant(
    pool: &PgPool,
    tenant: &TenantId,
    display_name: Option<&str>,
    accounts: &[String],
) -> Result<(), RegistryError> {
    if let Some(bad) = accounts
        .iter()
        .find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(RegistryError::BadAccount(bad.clone()));
    }
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO tenants (tenant_id, display_name) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE SET display_name = COALESCE(EXCLUDED.display_name, tenants.display_name)",
    )
    .bind(tenant.as_str())
    .bind(display_name)
    .execute(&mut *tx)
    .await?;
    for account in accounts {
        let owner: (String,) = sqlx::query_as(
            "WITH ins AS (INSERT INTO tenant_accounts (account_id, tenant_id) VALUES ($1, $2)
                          ON CONFLICT (account_id) DO NOTHING RETURNING tenant_id)
             SELECT tenant_id FROM ins UNION ALL SELECT tenant_id FROM tenant_accounts WHERE account_id = $1
             LIMIT 1",
        )
        .bind(account)
        .bind(tenant.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if owner.0 != tenant.as_str() {
            return Err(RegistryError::AccountTaken {
                account: account.clone(),
                owner: owner.0,
            });
        }
    }
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    pub tenant_id: String,
    pub display_name: Option<String>,
    pub accounts: Vec<String>,
}

pub async fn list_tenants(pool: &PgPool) -> Result<Vec<TenantRow>, sqlx::Error> {
    let rows: Vec<(String, Option<String>, Vec<String>)> = sqlx::query_as(
        "SELECT t.tenant_id, t.display_name,
                COALESCE(array_agg(a.account_id ORDER BY a.account_id) FILTER (WHERE a.account_id IS NOT NULL), '{}')
         FROM tenants t LEFT JOIN tenant_accounts a USING (tenant_id)
         GROUP BY t.tenant_id, t.display_name ORDER BY t.tenant_id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant_id, display_name, accounts)| TenantRow {
            tenant_id,
            display_name,
            accounts,
        })
        .collect())
}
