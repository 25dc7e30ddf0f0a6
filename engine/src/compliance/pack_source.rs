//! A pack as read from disk (reading is the caller's job): its manifest and Rego modules.

use sha2::{Digest, Sha256};

use super::PackManifest;
use crate::policy::hash_modules;

#[derive(Debug, Clone, PartialEq)]
pub struct PackSource {
    pub manifest: PackManifest,
    /// `(file name, Rego source)`, in a stable order.
    pub modules: Vec<(String, String)>,
}

impl PackSource {
    /// Content digest over the manifest and modules: a tenant's bundle digest includes it, so
    /// a changed pack changes the digest its decisions carry.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&self.manifest).unwrap_or_default());
        h.update([0]);
        hash_modules(
            &mut h,
            self.modules.iter().map(|(n, s)| (n.as_str(), s.as_str())),
        );
        format!("sha256:{}", hex::encode(h.finalize()))
    }
}
