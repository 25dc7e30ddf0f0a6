//! Reading stored records back for the read API and the console: events, decisions with their
//! events, dead letters and tenants, filtered and paged by keyset (never by offset, so a page is
//! as fast at the millionth row as at the first, and rows arriving meanwhile do not shift pages).
//!
//! Tenant scoping is decided by the caller (the API) and passed in as a [`TenantScope`]; these
//! queries apply it to every row they return.

mod cursor;
mod dead_letters;
mod decisions;
mod events;
mod page;
mod tenants;

pub use cursor::{Cursor, CursorError};
pub use dead_letters::{dead_letter_page, DeadLetterQuery, DeadLetterSummary};
pub use decisions::{
    decision_detail, decision_page, DecisionDetail, DecisionQuery, DecisionSummary,
};
pub use events::{event_detail, event_page, EventDetail, EventQuery, EventSummary};
pub use page::{Page, TenantScope, Window, MAX_PAGE};
pub use tenants::{tenant_list, TenantSummary};
