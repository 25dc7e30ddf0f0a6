//! `[policy]`: tenant bundles, how they are evaluated, and hot reload.

use std::path::PathBuf;

use portcullis_engine::policy::Evaluator;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// One directory per tenant: `{bundles_dir}/{tenant}/*.rego`, optional `data.json`, `metadata.json`.
    pub bundles_dir: PathBuf,
    /// Compliance packs tenants may enable: `{packs_dir}/{name}/{version}/pack.json`, `*.rego`.
    pub packs_dir: PathBuf,
    /// Rule evaluated for every event, relative to the tenant package (`data.tenants.{tenant}.{rule}`).
    pub rule: String,
    /// Longest one evaluation may run before it is stopped with an error (loops, explosive
    /// comprehensions). The event becomes a dead letter; an API query gets a 500.
    pub eval_timeout_ms: u64,
    /// `dispatch` (default): regorus's VM, with the tenant rule compiled per CloudTrail event
    /// name; `vm`: the VM on the whole bundle; `interpreter`: regorus's reference interpreter.
    /// A bundle a faster evaluator cannot take falls back to a slower one (`GET /v1/bundles`).
    pub evaluator: Evaluator,
    /// Watch `bundles_dir` and activate changed bundles while running (hot reload).
    pub watch: bool,
    /// Quiet time after the last file change before a bundle is reloaded (editors write in steps).
    pub reload_debounce_ms: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            bundles_dir: "policies/tenants".into(),
            packs_dir: "policies/packs".into(),
            rule: "decision".into(),
            eval_timeout_ms: 100,
            evaluator: Evaluator::default(),
            watch: true,
            reload_debounce_ms: 150,
        }
    }
}
