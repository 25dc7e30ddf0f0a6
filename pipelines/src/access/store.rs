//! Tokens in Postgres (`api_tokens`): made, listed, revoked, and looked up by hash.

use chrono::{DateTime, Utc};
use portcullis_engine::access::{Grants, ScopeError, TokenHash, TokenSecret};
use rand::TryRngCore;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum TokenStoreError {
    #[error("a token name must be 1 to 100 characters, without control characters")]
    BadName,
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error("the expiry {0} is already past")]
    ExpiryPast(DateTime<Utc>),
    #[error("no token has the id or name {0:?}")]
    NotFound(String),
    #[error("{count} active tokens are named {name:?}; revoke one by its id ({ids})")]
    Ambiguous {
        name: String,
        count: usize,
        ids: String,
    },
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What to make a token with.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub grants: Grants,
    /// `None`: never expires. Only for tokens kept somewhere safe; the CLI defaults to 90 days.
    pub expires_at: Option<DateTime<Utc>>,
    /// Who asks: `cli`, `demo`, `token:<name>`.
    pub created_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

/// A token as listed: everything but the secret.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TokenRecord {
    pub token_id: Uuid,
    pub name: String,
    pub hint: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenRecord {
    pub fn state(&self, now: DateTime<Utc>) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

const COLUMNS: &str =
    "token_id, name, hint, scopes, created_at, created_by, expires_at, last_used_at, revoked_at";

fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.chars().count()) && !name.chars().any(char::is_control)
}

/// Makes a token and returns it: the only time its secret is seen.
pub async fn create_token(
    pool: &PgPool,
    new: NewToken,
) -> Result<(TokenRecord, TokenSecret), TokenStoreError> {
    if !valid_name(&new.name) {
        return Err(TokenStoreError::BadName);
    }
    if let Some(at) = new.expires_at.filter(|at| *at <= Utc::now()) {
        return Err(TokenStoreError::ExpiryPast(at));
    }
    let mut random = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut random)
        .map_err(|e| TokenStoreError::Random(e.to_string()))?;
    let secret = TokenSecret::from_random(random);
    let record = insert(pool, &new, &secret).await?;
    Ok((record, secret))
}

async fn insert(
    pool: &PgPool,
    new: &NewToken,
    secret: &TokenSecret,
) -> Result<TokenRecord, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_tokens (token_id, name, secret_sha256, hint, scopes, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(&new.name)
    .bind(&secret.hash().0[..])
    .bind(secret.hint())
    .bind(new.grants.to_strings())
    .bind(&new.created_by)
    .bind(new.expires_at)
    .fetch_one(pool)
    .await
}

/// Every token, newest first.
pub async fn list_tokens(pool: &PgPool) -> Result<Vec<TokenRecord>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at DESC, token_id DESC"
    )))
    .fetch_all(pool)
    .await
}

/// Revokes a token named by its id, or by its name when one active token has it. Revoking a
/// revoked token changes nothing and says when it was. Engines drop it from their caches at once
/// (the table's trigger tells them).
pub async fn revoke_token(pool: &PgPool, which: &str) -> Result<TokenRecord, TokenStoreError> {
    let id = match Uuid::parse_str(which) {
        Ok(id) => id,
        Err(_) => {
            let ids: Vec<Uuid> = sqlx::query_scalar(
                "SELECT token_id FROM api_tokens WHERE name = $1 AND revoked_at IS NULL",
            )
            .bind(which)
            .fetch_all(pool)
            .await?;
            match ids.as_slice() {
                [] => return Err(TokenStoreError::NotFound(which.to_owned())),
                [one] => *one,
                many => {
                    return Err(TokenStoreError::Ambiguous {
                        name: which.to_owned(),
                        count: many.len(),
                        ids: many
                            .iter()
                            .map(Uuid::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
        }
    };
    let revoked: Option<TokenRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE api_tokens SET revoked_at = now() WHERE token_id = $1 AND revoked_at IS NULL
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    match revoked {
        Some(r) => Ok(r),
        None => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE token_id = $1"
        )))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| TokenStoreError::NotFound(which.to_owned())),
    }
}

/// The token with this hash and its state as Postgres's clock sees it, noting its use if it is
/// active. `None`: no such token.
pub(super) async fn find_by_hash(
    pool: &PgPool,
    hash: &TokenHash,
) -> Result<Option<(TokenRecord, TokenState)>, sqlx::Error> {
    let used: Option<TokenRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE api_tokens SET last_used_at = now()
         WHERE secret_sha256 = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
         RETURNING {COLUMNS}"
    )))
    .bind(&hash.0[..])
    .fetch_optional(pool)
    .await?;
    if let Some(record) = used {
        return Ok(Some((record, TokenState::Active)));
    }
    // Not active: say why. Revoked, or else expired (by the same clock that just said so).
    let found: Option<TokenRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE secret_sha256 = $1"
    )))
    .bind(&hash.0[..])
    .fetch_optional(pool)
    .await?;
    Ok(found.map(|r| {
        let state = if r.revoked_at.is_some() {
            TokenState::Revoked
        } else {
            TokenState::Expired
        };
        (r, state)
    }))
}

/// The scopes of token `id` if it is active now (Postgres's clock), else `None`.
pub(super) async fn active_scopes(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT scopes FROM api_tokens
         WHERE token_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_are_short_printable_text() {
        assert!(valid_name("ci"));
        assert!(valid_name("Ops team — Grafana"));
        assert!(!valid_name(""));
        assert!(!valid_name("a\nb"));
        assert!(!valid_name(&"x".repeat(101)));
    }
}
