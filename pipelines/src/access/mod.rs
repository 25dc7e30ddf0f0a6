//! Access to the HTTP API and the console: bearer tokens kept in Postgres, and the check each
//! request passes before it is served. Scopes themselves are pure logic
//! (`portcullis_engine::access`).

mod authenticator;
mod caller;
mod expiry;
mod store;

pub use authenticator::{AuthError, Authenticator, Credentials};
pub use caller::Caller;
pub use expiry::{expiry_from, ExpiryError, DEFAULT_TOKEN_LIFETIME};
pub use store::{
    create_token, list_tokens, revoke_token, NewToken, TokenRecord, TokenState, TokenStoreError,
};
