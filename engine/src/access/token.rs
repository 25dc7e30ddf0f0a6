//! Bearer tokens: `pcl_` followed by 32 random bytes in unpadded base64url.
//!
//! A token is shown once, when it is made; only its SHA-256 is kept. A slow password hash would
//! add nothing: the secret has 256 bits of entropy, so its hash cannot be searched back to it,
//! and a fast hash keeps the check off the request's critical path.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// What every token starts with, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "pcl_";

const SECRET_BYTES: usize = 32;
/// Length of the encoded secret after the prefix: 32 bytes in unpadded base64url.
const ENCODED_LEN: usize = 43;

/// Why a presented string is not a token. Said without quoting the string: it may be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token does not start with {TOKEN_PREFIX:?}")]
    Prefix,
    #[error("the token is {got} characters long; a token is {} (was it cut short?)", TOKEN_PREFIX.len() + ENCODED_LEN)]
    Length { got: usize },
    #[error("the token holds characters a token never does")]
    Encoding,
}

/// A token in full: only ever held while it is being shown once or checked.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// A token made of `random` bytes, which must come from a cryptographic source.
    pub fn from_random(random: [u8; SECRET_BYTES]) -> Self {
        Self(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random)))
    }

    /// Checks a presented token's form, so a malformed one is refused without a lookup.
    pub fn parse(presented: &str) -> Result<Self, TokenError> {
        let encoded = presented
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(TokenError::Prefix)?;
        if encoded.len() != ENCODED_LEN {
            return Err(TokenError::Length {
                got: presented.chars().count(),
            });
        }
        // The decoder also refuses a final character with stray low bits, so each token has
        // exactly one spelling.
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| TokenError::Encoding)?;
        debug_assert_eq!(bytes.len(), SECRET_BYTES);
        Ok(Self(presented.to_owned()))
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The last four characters: enough to tell tokens apart in a list, useless to an attacker.
    pub fn hint(&self) -> String {
        format!("…{}", &self.0[self.0.len() - 4..])
    }

    /// The token itself, to show the one time it is made.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSecret({})", self.hint())
    }
}

/// The SHA-256 of a token: what is stored and looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TokenSecret {
        TokenSecret::from_random([7; 32])
    }

    #[test]
    fn a_made_token_parses_back_to_itself_and_hashes_alike() {
        let t = sample();
        assert!(t.expose().starts_with("pcl_"));
        assert_eq!(t.expose().len(), 47);
        let back = TokenSecret::parse(t.expose()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.hash(), t.hash());
        assert_ne!(TokenSecret::from_random([8; 32]).hash(), t.hash());
    }

    #[test]
    fn malformed_tokens_are_refused_by_form() {
        let t = sample();
        let s = t.expose();
        assert_eq!(TokenSecret::parse(""), Err(TokenError::Prefix));
        assert_eq!(TokenSecret::parse(&s[4..]), Err(TokenError::Prefix));
        assert_eq!(
            TokenSecret::parse(&format!("PCL_{}", &s[4..])),
            Err(TokenError::Prefix)
        );
        assert_eq!(
            TokenSecret::parse(&s[..46]),
            Err(TokenError::Length { got: 46 })
        );
        assert_eq!(
            TokenSecret::parse(&format!("{s}A")),
            Err(TokenError::Length { got: 48 })
        );
        let bad_char = format!("{}!{}", &s[..10], &s[11..]);
        assert_eq!(TokenSecret::parse(&bad_char), Err(TokenError::Encoding));
        let multibyte = format!("{}é{}", &s[..10], &s[12..]);
        assert!(TokenSecret::parse(&multibyte).is_err());
    }

    #[test]
    fn each_token_has_one_spelling() {
        // 43 characters carry 258 bits; the last character's 2 spare bits must be zero.
        let s = sample().expose().to_owned();
        let last = s.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let i = alphabet.find(last).unwrap();
        let twin = alphabet.chars().nth(i | 1).unwrap();
        assert_ne!(twin, last);
        let respelled = format!("{}{twin}", &s[..46]);
        assert_eq!(TokenSecret::parse(&respelled), Err(TokenError::Encoding));
    }

    #[test]
    fn debug_and_hint_never_show_the_secret() {
        let t = sample();
        let shown = format!("{t:?} {}", t.hint());
        assert!(!shown.contains(&t.expose()[4..20]));
        assert_eq!(t.hint().chars().count(), 5);
    }
}
