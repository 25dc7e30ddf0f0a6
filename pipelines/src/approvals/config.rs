//! `[approvals]`: how long a request waits for an approver, and how long an approval lasts.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// A request nobody answers within this long expires: a denial, with a receipt.
    pub pending_secs: u64,
    /// An approved request lets the same request (rule, principal, action, resource) through
    /// for this long.
    pub grant_secs: u64,
    /// How often expired requests are looked for.
    pub sweep_interval_ms: u64,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self {
            pending_secs: 900,
            grant_secs: 3600,
            sweep_interval_ms: 1000,
        }
    }
}

/// Longest wait or grant: a year.
const MAX_SECS: u64 = 366 * 86_400;

impl ApprovalsConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(1..=MAX_SECS).contains(&self.pending_secs)
            || !(1..=MAX_SECS).contains(&self.grant_secs)
        {
            p.push(format!(
                "approvals.pending_secs and approvals.grant_secs must be from 1 to {MAX_SECS} (a year)"
            ));
        }
        if self.sweep_interval_ms < 100 {
            p.push("approvals.sweep_interval_ms must be at least 100".into());
        }
        p
    }

    pub fn pending(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.pending_secs.min(MAX_SECS) as i64)
    }

    pub fn grant(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.grant_secs.min(MAX_SECS) as i64)
    }
}
