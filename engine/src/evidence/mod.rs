//! Evidence: a receipt for every decision, kept in one append-only Merkle log per tenant, with
//! signed checkpoints, and the offline check of an exported bundle.
//!
//! - [`receipt`]: the record a decision leaves, stored and hashed as exact bytes;
//! - the tree: RFC 6962 hashing (leaf `SHA-256(0x00‖receipt)`, node `SHA-256(0x01‖l‖r)`) with
//!   Go sumdb's stored-hash layout, from [`tlog_tiles`]; [`frontier`] grows a root leaf by leaf;
//! - [`checkpoint`]: C2SP tlog-checkpoint bodies in C2SP signed notes, Ed25519 ([`log_key`]);
//! - [`bundle`] and [`verify`]: what `portcullis evidence export` writes and `portcullis verify`
//!   checks, naming exactly what was edited, deleted, inserted, reordered, forked or rolled back.
//!
//! Why a log with checkpoints rather than a signature per receipt: docs/decisions/0025.

pub mod bundle;
pub mod checkpoint;
mod error;
pub mod frontier;
pub mod hash_store;
mod hash_text;
pub mod log_key;
pub mod receipt;
pub mod verify;

pub use bundle::{
    prove_header, BundleCheckpoint, BundleHeader, BundleKey, BundleLine, HeaderProofs,
    BUNDLE_FORMAT,
};
pub use checkpoint::{open_checkpoint, sign_checkpoint, CheckpointBody, OpenedCheckpoint};
pub use error::EvidenceError;
pub use frontier::Frontier;
pub use hash_store::{indexes_needed, MapReader};
pub use hash_text::HashText;
pub use log_key::LogKey;
pub use receipt::{
    input_digest, json_digest, reasons_of, ApprovalAnswered, Outcome, Receipt, ReceiptKind,
    RECEIPT_VERSION,
};
pub use signed_note::is_key_name_valid;
pub use tlog_tiles::Error as TreeError;
pub use tlog_tiles::{
    check_record, check_tree, node_hash, prove_record, prove_tree, record_hash as leaf_hash,
    split_stored_hash_index, stored_hash_index, stored_hashes_for_record_hash, sub_tree_index,
    tree_hash, Hash, HashReader, EMPTY_HASH,
};
pub use verify::{BundleCheck, Finding, Report};

/// A tenant's log origin, the first line of its checkpoints: `{prefix}/receipts/{tenant}`.
pub fn log_origin(prefix: &str, tenant: &str) -> String {
    format!("{prefix}/receipts/{tenant}")
}
