//! A tenant's policy bundle as read from disk (reading is the caller's job).

use sha2::{Digest, Sha256};

use crate::TenantId;

#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    pub tenant: TenantId,
    /// `(file name, Rego source)`, in a stable order.
    pub modules: Vec<(String, String)>,
    /// Optional `data.json`, mounted under the tenant's package.
    pub data: Option<serde_json::Value>,
    /// Revision from `metadata.json`, if the author set one.
    pub revision: Option<String>,
    /// `metadata.json` `decision_log.mask`: JSON pointers (`/input/...`) removed from logged inputs.
    pub mask: Vec<String>,
    /// Compliance packs the tenant enabled in `metadata.json`, as read from the packs directory.
    pub packs: Vec<crate::compliance::PackSource>,
}

impl Bundle {
    /// Content digest over modules and data: changes whenever anything that affects decisions does.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        hash_modules(
            &mut h,
            self.modules.iter().map(|(n, s)| (n.as_str(), s.as_str())),
        );
        if let Some(data) = &self.data {
            h.update(data.to_string().as_bytes());
        }
        for m in &self.mask {
            h.update([1]);
            h.update(m.as_bytes());
        }
        for pack in &self.packs {
            h.update([2]);
            h.update(pack.digest().as_bytes());
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    }

    /// The revision decisions are stamped with: the author's, else a short digest.
    pub fn effective_revision(&self) -> String {
        match &self.revision {
            Some(r) => r.clone(),
            None => self.digest()[..23].to_owned(),
        }
    }
}

/// Feeds Rego modules, `(file name, source)` in a stable order, into a content digest: each
/// name and source NUL-terminated, so no two module sets hash alike by shifting text across.
pub(crate) fn hash_modules<'a>(h: &mut Sha256, modules: impl Iterator<Item = (&'a str, &'a str)>) {
    for (name, src) in modules {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(src.as_bytes());
        h.update([0]);
    }
}
