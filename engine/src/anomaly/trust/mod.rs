//! Trust per principal (CloudTrail) and per agent (devices), from 0 to 100, from their recent
//! anomalies (docs/anomaly-models.md, "Trust scores").
//!
//! Each anomaly takes a share of the trust that is left: 30 % at the threshold, rising linearly
//! to all of it at a score of 1. Scores below the threshold take nothing, so a busy principal's
//! many ordinary events never add up to distrust. What was lost comes back with the line's
//! half-life, in event time, so the same events in the same order give the same trust.

mod trust_book;
mod trust_level;
mod trust_state;

pub use trust_book::{TrustBook, TrustChange, MAX_COUNTED_ANOMALIES, MAX_TRUST_SUBJECTS};
pub use trust_level::TrustLevel;
pub use trust_state::{anomaly_weight, trust_of_risk, TrustState, FULL_TRUST};
