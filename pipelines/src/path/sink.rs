//! The seam between the path and where rows are stored: Postgres in production, memory in unit
//! tests of the path.

use futures::future::BoxFuture;

use super::{RowSet, WriteCounts};

/// Why a write did not commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The store cannot be reached or gave up (connection lost, shutting down): the same rows
    /// may go through later.
    #[error("the sink is unavailable: {0}")]
    Unavailable(String),
    /// The store refused what the rows contain: writing them again cannot succeed.
    #[error("the sink refused the rows: {0}")]
    Refused(String),
}

/// Stores row sets. Implementations write every row of `sets` in one transaction, or none, and
/// are idempotent: rows written twice (a retry, a redelivery) are stored once.
pub trait RowSink: Send + Sync + 'static {
    /// What the rows are stored in, for messages: "Postgres".
    fn name(&self) -> &'static str;
    fn write<'a>(&'a self, sets: &'a [RowSet]) -> BoxFuture<'a, Result<WriteCounts, SinkError>>;
}
