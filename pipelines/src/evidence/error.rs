//! What the evidence edges can fail with.

use portcullis_engine::evidence::EvidenceError;

use crate::secret_file::SecretFileError;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceStoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error(transparent)]
    Key(#[from] SecretFileError),
    #[error("tenant {0} has no receipts")]
    NoReceipts(String),
    #[error("{0}")]
    Refused(String),
    #[error("cannot write the bundle: {0}")]
    Write(#[from] std::io::Error),
}
