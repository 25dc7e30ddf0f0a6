//! What an agent session reads, records and answers through: Postgres and MQTT, implemented at
//! the edges (`pipelines`).

use std::future::Future;

use portcullis_engine::distribution::{AgentKey, AgentStatus, Hello};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("cannot read or record the agent: {0}")]
    Store(String),
    #[error("cannot answer the agent: {0}")]
    Send(String),
}

pub trait AgentStore: Send + Sync + 'static {
    /// Records the agent (groups, online, applied versions) and answers it on its config topic
    /// with its segments' versions after those it applies. Returns how many versions were sent.
    fn hello(
        &self,
        key: AgentKey,
        hello: Hello,
    ) -> impl Future<Output = Result<usize, SessionError>> + Send + 'static;

    /// Records the agent's status (online or not, applied versions); a `replayed` one (the
    /// broker's retained copy) does not count as the agent being seen.
    fn status(
        &self,
        key: AgentKey,
        status: AgentStatus,
        replayed: bool,
    ) -> impl Future<Output = Result<(), SessionError>> + Send + 'static;

    /// The agent's segments changed (a rule, or its enrollment): answers it on its config topic
    /// as if it had said hello, from what is recorded of it (groups, applied versions), without
    /// counting it as seen. Returns how many versions were sent.
    fn reconfigure(
        &self,
        key: AgentKey,
    ) -> impl Future<Output = Result<usize, SessionError>> + Send + 'static;

    /// Answers a message that could not be read (refused hello) on the agent's config topic.
    fn refuse(
        &self,
        key: AgentKey,
        why: String,
    ) -> impl Future<Output = Result<(), SessionError>> + Send + 'static;
}
