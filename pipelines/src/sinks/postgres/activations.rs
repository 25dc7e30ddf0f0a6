//! Bundle activations, recorded in `bundle_activations` as they happen.

use portcullis_actors::Activation;
use portcullis_engine::TenantId;
use sqlx::PgPool;

pub async fn insert_activation(
    pool: &PgPool,
    a: &Activation,
    engine: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bundle_activations (tenant_id, revision, digest, activated_at, engine)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(a.tenant.as_str())
    .bind(&a.revision)
    .bind(&a.digest)
    .bind(a.activated_at)
    .bind(engine)
    .execute(pool)
    .await?;
    Ok(())
}

/// Every (tenant, revision, digest) activated before, the latest digest of a revision where it
/// named more than one: what [`portcullis_actors::PolicyLoader::with_known_revisions`] takes.
/// Rows of tenant ids the engine would not accept are skipped.
pub async fn known_revisions(
    pool: &PgPool,
) -> Result<Vec<(TenantId, String, String)>, sqlx::Error> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT DISTINCT ON (tenant_id, revision) tenant_id, revision, digest
         FROM bundle_activations
         ORDER BY tenant_id, revision, activated_at DESC, activation_id DESC",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(tenant, revision, digest)| {
            Some((TenantId::parse(&tenant).ok()?, revision, digest))
        })
        .collect())
}
