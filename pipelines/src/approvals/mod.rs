//! Approval requests in Postgres (docs/approvals.md): opened by decisions whose rule answered
//! `require_approval`, answered by approvers through the API, CLI or console, expired by a
//! sweep; every answer and expiry leaves a receipt in the same transaction. Agents' events
//! open them in their batch's transaction and agents are told the answer over MQTT.

mod agent_requests;
mod announce;
mod answered;
mod config;
mod store;
mod sweep;
mod tell_agents;

pub use agent_requests::{add_agent_approvals, AgentApproval, AgentApprovalsOpened, Joined};
pub use announce::stream_answers;
pub use config::ApprovalsConfig;
pub use store::{
    answer, answered_for_agents_since, expire_due, get, list, open_request, Answer, AnswerError,
    ApprovalQuery, ApprovalRow, Opened, APPROVALS_CHANNEL,
};
pub use sweep::run_expiry;
pub use tell_agents::{approval_notice, tell_agents};
