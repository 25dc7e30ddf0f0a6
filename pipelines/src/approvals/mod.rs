//! Approval requests in Postgres (docs/approvals.md): opened by decisions whose rule answered
//! `require_approval`, answered by approvers through the API, CLI or console, expired by a
//! sweep; every answer and expiry leaves a receipt in the same transaction.

mod announce;
mod config;
mod store;
mod sweep;

pub use announce::stream_answers;
pub use config::ApprovalsConfig;
pub use store::{
    answer, expire_due, get, list, open_request, Answer, AnswerError, ApprovalQuery, ApprovalRow,
    Opened, APPROVALS_CHANNEL,
};
pub use sweep::run_expiry;
