//! `[distribution]`: segment policy sent to edge agents over MQTT (docs/agent-protocol.md).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistributionConfig {
    /// Send published segment versions to agents (needs `[mqtt]` enabled).
    pub enabled: bool,
    /// The Ed25519 key segment policy is signed with: created (mode 0600) on first use if
    /// missing. Agents trust its public key (`portcullis signing-key show`).
    pub signing_key_file: PathBuf,
    /// How often versions published but not yet sent are looked for, besides the notification
    /// each publish sends (which covers the common case at once).
    pub resend_secs: u64,
    /// How long the broker has to acknowledge a version before the send is retried.
    pub ack_timeout_secs: u64,
    /// Largest signed version (modules and data, base64 in its envelope) that may be published.
    pub max_policy_bytes: usize,
    /// Tell each agent the verdict on each of its events, on its `…/decisions` topic, once the
    /// decision is committed (docs/agent-protocol.md).
    pub decisions_to_agents: bool,
    /// Verdicts waiting to be published to agents; past this, they are dropped and counted
    /// in `portcullis_agent_decisions_dropped_total` (Postgres has them all).
    pub decisions_queue: usize,
}

impl Default for DistributionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            signing_key_file: PathBuf::from("keys/policy-signing.key"),
            resend_secs: 5,
            ack_timeout_secs: 10,
            max_policy_bytes: 1024 * 1024,
            decisions_to_agents: true,
            decisions_queue: 10_000,
        }
    }
}
