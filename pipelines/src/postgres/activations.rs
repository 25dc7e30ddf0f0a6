//! Bundle activations, recorded in `bundle_activations` as they happen.

use portcullis_actors::Activation;
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
