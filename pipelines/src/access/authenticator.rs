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
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::caller::Caller;
use super::store::{find_by_hash, TokenState};
use crate::retry::Backoff;

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
    #[error("the token cannot be checked now: Postgres is unavailable ({0})")]
    Unavailable(sqlx::Error),
}

struct Cached {
    caller: Arc<Caller>,
    checked: Instant,
}

pub struct Authenticator {
    /// `None` when authentication is off.
    pool: Option<PgPool>,
    cache: RwLock<HashMap<TokenHash, Cached>>,
    anonymous: Arc<Caller>,
}

impl Authenticator {
    /// Checks tokens against `pool`'s `api_tokens`, and listens for changes until `cancel`.
    pub fn new(pool: PgPool, cancel: CancellationToken) -> Arc<Self> {
        let auth = Arc::new(Self {
            pool: Some(pool.clone()),
            cache: RwLock::new(HashMap::new()),
            anonymous: Arc::new(Caller::anonymous()),
        });
        tokio::spawn(listen(Arc::downgrade(&auth), pool, cancel));
        auth
    }

    /// Lets every request in with every scope (`http.auth = false`).
    pub fn disabled() -> Arc<Self> {
        Arc::new(Self {
            pool: None,
            cache: RwLock::new(HashMap::new()),
            anonymous: Arc::new(Caller::anonymous()),
        })
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
        let record = find_by_hash(pool, &hash)
            .await
            .map_err(AuthError::Unavailable)?
            .ok_or(AuthError::Unknown)?;
        match record.state(Utc::now()) {
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
        Ok(caller)
    }

    fn cached(&self, hash: &TokenHash) -> Option<Arc<Caller>> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let hit = cache.get(hash)?;
        let fresh = hit.checked.elapsed() < CACHE_TTL
            && hit.caller.expires_at.is_none_or(|at| at > Utc::now());
        fresh.then(|| hit.caller.clone())
    }

    fn forget_all(&self) {
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Empties the cache whenever a token changes, and whenever the listening connection is
/// lost, since changes may be missed until it is back (entries made meanwhile still expire
/// within [`CACHE_TTL`]).
async fn listen(auth: std::sync::Weak<Authenticator>, pool: PgPool, cancel: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut listener = loop {
        let attempt = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let attempt = tokio::select! {
            l = attempt => l,
            _ = cancel.cancelled() => return,
        };
        match attempt {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for token changes yet; retrying");
                if backoff.wait(&cancel).await.is_err() {
                    return;
                }
            }
        }
    };
    loop {
        let next = tokio::select! {
            n = listener.try_recv() => n,
            _ = cancel.cancelled() => return,
        };
        let Some(auth) = auth.upgrade() else { return };
        auth.forget_all();
        match next {
            Ok(Some(_)) => {}
            // The connection dropped; the next try_recv reconnects and listens again.
            Ok(None) => tracing::warn!("token change listener lost its connection; reconnecting"),
            Err(e) => {
                tracing::warn!(error = %e, "token change listener failed; retrying");
                if backoff.wait(&cancel).await.is_err() {
                    return;
                }
            }
        }
    }
}
