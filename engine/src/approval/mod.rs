//! Approvals (seed 002): a rule may answer that a person must decide. Such a decision opens an
//! approval request; an approver approves or denies it before it expires; an approved request
//! lets the same request through for a while (docs/approvals.md).
//!
//! Pure parts only: reading the three outcomes from a rule's value, the request and the key
//! that finds it again, and the rules of answering one.

mod request;
mod status;
mod verdict;

pub use request::{request_key, ApprovalRequest};
pub use status::{check_answerable, ApprovalError, ApprovalStatus, Resolution};
pub use verdict::Verdict;
