//! Who may do what: bearer tokens and the scopes they carry.
//!
//! Pure logic only. Tokens are generated from random bytes the caller supplies, stored by the
//! caller as a hash, and checked against scopes here; where they live and how they are looked up
//! is the edges' business.

mod scope;
mod token;

pub use scope::{Grants, Permission, Role, Scope, ScopeError, Visible};
pub use token::{TokenError, TokenHash, TokenSecret, TOKEN_PREFIX};
