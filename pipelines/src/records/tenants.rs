//! Tenants with their AWS accounts.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::page::TenantScope;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TenantSummary {
    pub tenant_id: String,
    pub display_name: Option<String>,
    pub accounts: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// Registered tenants within `scope`, by id.
pub async fn tenant_list(
    pool: &PgPool,
    scope: &TenantScope,
) -> Result<Vec<TenantSummary>, sqlx::Error> {
    let mut b = QueryBuilder::<Postgres>::new(
        "SELECT t.tenant_id, t.display_name, t.created_at,
                coalesce(array_agg(a.account_id ORDER BY a.account_id)
                         FILTER (WHERE a.account_id IS NOT NULL), '{}') AS accounts
         FROM tenants t LEFT JOIN tenant_accounts a ON a.tenant_id = t.tenant_id WHERE true",
    );
    if let Some(ids) = scope.ids() {
        b.push(" AND t.tenant_id = ANY(").push_bind(ids).push(")");
    }
    b.push(" GROUP BY t.tenant_id ORDER BY t.tenant_id");
    b.build_query_as::<TenantSummary>().fetch_all(pool).await
}
