//! What making or reading evidence can refuse.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EvidenceError {
    #[error("malformed key: {0}")]
    MalformedKey(String),
    #[error("a key name must be non-empty, without spaces or '+': {0:?}")]
    BadKeyName(String),
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    #[error("checkpoint signed by a key this check does not know: {0}")]
    UnknownKey(String),
    #[error("checkpoint signature does not verify with key {0}")]
    BadSignature(String),
    #[error("the frontier of a tree of {size} receipts has {expected} hashes, got {got}")]
    FrontierShape {
        size: u64,
        expected: u32,
        got: usize,
    },
    #[error("{0}")]
    Tree(#[from] tlog_tiles::Error),
}
