//! An evidence bundle: one file of JSON lines. The first line is the [`BundleHeader`] (the
//! tenant's log, its keys, its checkpoints with the consistency proofs between them, and the
//! hashes that stand for the receipts before the range); then one [`BundleLine`] per receipt,
//! in index order. Documented in docs/evidence.md.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use tlog_tiles::{prove_tree, HashReader};

use super::{EvidenceError, Frontier, HashText};

/// The first field of every bundle; a reader refuses any other.
pub const BUNDLE_FORMAT: &str = "portcullis-evidence-bundle/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleHeader {
    pub format: String,
    pub tenant: String,
    /// The log's origin, the first line of each of its checkpoints.
    pub origin: String,
    /// Index of the first receipt in the bundle.
    pub first: u64,
    /// One past the last receipt: the size of a checkpoint in `checkpoints`.
    pub end: u64,
    /// Hashes of the perfect subtrees covering `[0, first)`, left to right: what stands for
    /// the receipts before the bundle when roots are recomputed.
    pub left: Vec<HashText>,
    pub keys: Vec<BundleKey>,
    /// By size. Each carries the consistency proof from the one listed before it; the
    /// verifier orders them by their signed time itself.
    pub checkpoints: Vec<BundleCheckpoint>,
    pub exported_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleKey {
    /// `<name>+<id>+<base64>`: a C2SP signed-note verifier key.
    pub key: String,
    pub created_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleCheckpoint {
    /// The signed note, as signed.
    pub note: String,
    /// RFC 6962 consistency proof from the previous checkpoint listed (empty for the first,
    /// or when the sizes are equal).
    #[serde(default)]
    pub consistency: Vec<HashText>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BundleLine {
    pub index: u64,
    /// The leaf hash the log holds at `index` (the tree's, not recomputed from the receipt).
    pub tree_hash: HashText,
    /// The receipt's exact bytes; `null` when the log holds a hash but its receipt is gone.
    pub receipt: Option<Box<RawValue>>,
}

/// The hashes a header carries besides its notes: the left hashes and, per checkpoint after
/// the first, the consistency proof from the one before.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderProofs {
    pub left: Vec<HashText>,
    pub consistency: Vec<Vec<HashText>>,
}

/// Proves a header for receipts from `first`, with checkpoints of `sizes` in signing order,
/// from the log's stored hashes. Fails only when the left hashes cannot be read.
pub fn prove_header(
    first: u64,
    sizes: &[u64],
    reader: &impl HashReader,
) -> Result<HeaderProofs, EvidenceError> {
    let left = reader
        .read_hashes(&Frontier::indexes(first))?
        .into_iter()
        .map(HashText::from)
        .collect();
    let mut consistency = vec![Vec::new(); sizes.len()];
    for (i, pair) in sizes.windows(2).enumerate() {
        let (before, after) = (pair[0], pair[1]);
        if before > 0 && after > before {
            // A proof the log's hashes can no longer make is left empty: the verifier then
            // says the two checkpoints are not shown to be one append-only history.
            consistency[i + 1] = prove_tree(after, before, reader)
                .map(|p| p.into_iter().map(HashText::from).collect())
                .unwrap_or_default();
        }
    }
    Ok(HeaderProofs { left, consistency })
}
