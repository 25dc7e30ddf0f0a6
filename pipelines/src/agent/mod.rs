//! The reference edge agent (`portcullis agent run`): bootstraps its segments' policy from the
//! engine, keeps it on disk, applies every version in order over a persistent MQTT session,
//! and answers decisions locally, also while the broker is away (docs/agent-protocol.md).

mod cache;
mod local_api;
mod run;

pub use cache::PolicyCache;
pub use run::{run_agent, AgentOptions};
