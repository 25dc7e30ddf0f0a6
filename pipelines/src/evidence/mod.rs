//! Evidence at the edges: receipts written with their decisions (migrations/0013), the
//! checkpoint loop that seals and signs each tenant's log, the signing key on disk, the
//! export of a bundle, and proofs for the API. The log itself is
//! `portcullis_engine::evidence`; how to verify: docs/evidence.md.

mod append;
mod bundle_file;
mod checkpoints;
mod config;
mod error;
mod export;
mod log_key_file;
mod proofs;
mod receipt_row;
mod sealer;
mod store;

pub use append::append_receipts;
pub use bundle_file::check_bundle;
pub use checkpoints::run_checkpoints;
pub use config::EvidenceConfig;
pub use error::EvidenceStoreError;
pub use export::{export_bundle, Exported};
pub use log_key_file::{load_log_key, load_or_create_log_key, rotate_log_key};
pub use proofs::{
    consistency_proof, list_checkpoints, receipt_with_proof, CheckpointView, ReceiptKey,
    ReceiptProof,
};
pub use receipt_row::{add_receipts, exact_receipt, ReceiptRow};
pub use sealer::{frontier_at, Sealed, Sealer, MAX_SEAL};
pub use store::{
    checkpoint_covering, latest_checkpoint, list_keys, register_key, retire_key, CheckpointRow,
    KeyRow,
};
