//! Checks a request's token: its form, then a cache, then Postgres.
//!
//! Checked tokens are cached for a minute, so a busy decision API does not ask Postgres on every
//! request. Access taken away (revocation, changed scopes or expiry) reaches the cache at once:
//! the `api_tokens` trigger notifies `portcullis_api_tokens`, and a listener empties the cache.
//! If the listener's connection drops, the cache is emptied when it comes back, and until then
//! no entry outlives [`CACHE_TTL`]. Expiry is checked on every request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use portcullis_engine::access::{Grants, TokenError, TokenHash, TokenSecret};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::caller::Caller;
use super::store::{active_scopes, find_by_hash, TokenState};
use crate::sinks::postgres::notifications::follow;

/// How long a checked token is trusted without asking Postgres again; also how stale
/// `last_used_at` may be.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Most tokens cached; past this the cache starts over (there are rarely this many tokens).
const CACHE_MAX: usize = 10_000;
const CHANNEL: &str = "portcullis_api_tokens";

/// What a request presented, taken from its headers by the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    None,
    /// `Authorization: Bearer <token>`, or the token offered as a WebSocket subprotocol.
    Bearer(&'a str),
    /// An `Authorization` header with another scheme.
    OtherScheme,
    /// A token in the URL's query string, which is never accepted.
    InQuery,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("this endpoint needs a token: send it as 'Authorization: Bearer <token>' (make one with 'portcullis token create')")]
    Missing,
    #[error("only bearer tokens are accepted: 'Authorization: Bearer <token>'")]
    OtherScheme,
    #[error("a token is accepted only in the Authorization header (or, for a WebSocket, as the subprotocol 'portcullis.token.<token>'), never in the URL, where logs and browser history keep it; revoke the token if it was sent this way")]
    InQuery,
    #[error("the token is malformed: {0}")]
    Malformed(TokenError),
    #[error("the token is not known here")]
    Unknown,
    #[error("the token was revoked")]
    Revoked,
    #[error("the token expired")]
    Expired,
    #[error("the token cannot be checked now: Postgres is unavailable")]
    Unavailable,
}

struct Cached {
    caller: Arc<Caller>,
    checked: Instant,
}

pub struct Authenticator {
    /// `None` when authentication is off.
    pool: Option<PgPool>,
    cache: RwLock<HashMap<TokenHash, Cached>>,
    /// Bumped whenever the cache is emptied: a lookup that began before a change must not put
    /// what it read into the cache after it, and open streams recheck their token on it.
    generation: watch::Sender<u64>,
    anonymous: Arc<Caller>,
}

impl Authenticator {
    /// Checks tokens against `pool`'s `api_tokens`, and listens for changes until `cancel`.
    pub fn new(pool: PgPool, cancel: CancellationToken) -> Arc<Self> {
        let auth = Arc::new(Self::with_pool(Some(pool.clone())));
        tokio::spawn(listen(Arc::downgrade(&auth), pool, cancel));
        auth
    }

    /// Lets every request in with every scope (`http.auth = false`).
    pub fn disabled() -> Arc<Self> {
        Arc::new(Self::with_pool(None))
    }

    fn with_pool(pool: Option<PgPool>) -> Self {
        Self {
            pool,
            cache: RwLock::new(HashMap::new()),
            generation: watch::Sender::new(0),
            anonymous: Arc::new(Caller::anonymous()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.pool.is_some()
    }

    pub async fn authenticate(&self, presented: Credentials<'_>) -> Result<Arc<Caller>, AuthError> {
        let Some(pool) = &self.pool else {
            return Ok(self.anonymous.clone());
        };
        let token = match presented {
            Credentials::Bearer(token) => token,
            Credentials::None => return Err(AuthError::Missing),
            Credentials::OtherScheme => return Err(AuthError::OtherScheme),
            Credentials::InQuery => return Err(AuthError::InQuery),
        };
        let hash = TokenSecret::parse(token)
            .map_err(AuthError::Malformed)?
            .hash();
        if let Some(caller) = self.cached(&hash) {
            return Ok(caller);
        }
        let generation = *self.generation.borrow();
        let (record, state) = find_by_hash(pool, &hash)
            .await
            .map_err(unavailable)?
            .ok_or(AuthError::Unknown)?;
        match state {
            TokenState::Revoked => return Err(AuthError::Revoked),
            TokenState::Expired => return Err(AuthError::Expired),
            TokenState::Active => {}
        }
        // Stored scopes were checked when the token was made; one edited by hand into
        // something unreadable locks the token out rather than widening it.
        let grants = Grants::parse(&record.scopes).map_err(|_| AuthError::Unknown)?;
        let caller = Arc::new(Caller {
            token_id: Some(record.token_id),
            name: record.name,
            grants,
            expires_at: record.expires_at,
        });
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        // A change since the lookup began may have taken this token's access away: answer this
        // request (it was valid when asked), but do not remember it.
        if *self.generation.borrow() == generation {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(
                hash,
                Cached {
                    caller: caller.clone(),
                    checked: Instant::now(),
                },
            );
        }
        Ok(caller)
    }

    /// Whether `caller`'s token still holds (not revoked, not expired, same scopes), for a
    /// connection that outlives the request that opened it. Asks Postgres; on an error it says
    /// yes, and the next change or check decides.
    pub async fn still_valid(&self, caller: &Caller) -> bool {
        let (Some(pool), Some(id)) = (&self.pool, caller.token_id) else {
            return true;
        };
        if caller.expires_at.is_some_and(|at| at <= Utc::now()) {
            return false;
        }
        match active_scopes(pool, id).await {
            Ok(Some(scopes)) => Grants::parse(&scopes).is_ok_and(|g| g == caller.grants),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot recheck a streaming token; keeping it for now");
                true
            }
        }
    }

    /// Changes whenever tokens may have changed: what open streams watch.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn cached(&self, hash: &TokenHash) -> Option<Arc<Caller>> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let hit = cache.get(hash)?;
        let fresh = hit.checked.elapsed() < CACHE_TTL
            && hit.caller.expires_at.is_none_or(|at| at > Utc::now());
        fresh.then(|| hit.caller.clone())
    }

    fn forget_all(&self) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        self.generation.send_modify(|g| *g += 1);
        cache.clear();
    }
}

/// Postgres's own error text stays in the log: callers without a valid token see only that
/// it is unavailable.
fn unavailable(e: sqlx::Error) -> AuthError {
    tracing::warn!(error = %e, "cannot check a token: Postgres unavailable");
    AuthError::Unavailable
}

/// Empties the cache whenever a token changes, and whenever the listening connection has been
/// (re)made, since changes may have been missed while it was down (entries made meanwhile
/// expire within [`CACHE_TTL`] in any case).
async fn listen(auth: std::sync::Weak<Authenticator>, pool: PgPool, cancel: CancellationToken) {
    follow(pool, CHANNEL, cancel, |_| match auth.upgrade() {
        Some(a) => {
            a.forget_all();
            true
        }
        None => false,
    })
    .await
}
