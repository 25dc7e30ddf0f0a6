//! The agent-session entity: one per agent that has spoken lately. It handles the agent's
//! hellos and statuses in order (so a status never overtakes the hello before it), keeps what
//! the agent last said, and passivates when the agent goes quiet; its record is in Postgres.

mod actor;
mod store;

pub use actor::{AgentSession, FromAgent, SegmentsChanged, SessionState};
pub use store::{AgentStore, SessionError};
