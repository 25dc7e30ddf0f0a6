//! Portcullis domain logic.
//!
//! Everything here is pure: no network, no files, no clocks except where a caller passes one in.
//! The `actors` crate owns state and concurrency on top of these types; `pipelines` owns the edges.

pub mod access;
pub mod accounts;
pub mod anomaly;
pub mod approval;
pub mod compliance;
pub mod dead_letter;
pub mod decode;
pub mod distribution;
pub mod event;
pub mod evidence;
pub mod gateway;
pub mod ids;
pub mod policy;
pub mod protection;
pub mod signals;
pub mod tenant;

pub use accounts::TenantRegistry;
pub use dead_letter::{DeadLetter, Origin};
pub use event::{Event, EventKind, Source};
pub use policy::{Bundle, Decision, PolicyError, TenantPolicy};
pub use tenant::{TenantId, TenantIdError};
