//! `[evidence]`: receipts for every decision and the signed checkpoints of each tenant's log.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Off: decisions leave no receipts and no checkpoints are signed.
    pub enabled: bool,
    /// The key that signs checkpoints: created on first start (mode 0600), and refused if
    /// others may read it. `portcullis evidence rotate-key` replaces it.
    pub key_file: PathBuf,
    /// Names this installation's logs and key: a tenant's checkpoints start with the line
    /// `{origin}/receipts/{tenant}`, and the key is named `{origin}`. No spaces or `+`.
    pub origin: String,
    /// A tenant's new receipts are sealed under a signed checkpoint at most this long after
    /// they are written …
    pub checkpoint_interval_ms: u64,
    /// … or as soon as this many are waiting.
    pub checkpoint_receipts: u64,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            key_file: PathBuf::from("keys/evidence-log.key"),
            origin: "portcullis.local".into(),
            checkpoint_interval_ms: 5_000,
            checkpoint_receipts: 10_000,
        }
    }
}

impl EvidenceConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !portcullis_engine::evidence::is_key_name_valid(&self.origin) {
            p.push(format!(
                "evidence.origin {:?} must be non-empty, without spaces or '+' (e.g. \"evidence.example.com\")",
                self.origin
            ));
        }
        if self.checkpoint_interval_ms < 100 {
            p.push("evidence.checkpoint_interval_ms must be at least 100".into());
        }
        if self.checkpoint_receipts == 0 {
            p.push("evidence.checkpoint_receipts must be at least 1".into());
        }
        p
    }
}
