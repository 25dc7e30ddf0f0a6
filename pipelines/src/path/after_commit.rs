//! Steps that follow a commit: the decision stream today; agent replies and receipt
//! checkpoints later.

use super::RowSet;

/// Told of every batch once its rows are committed and the source has acknowledged it, and
/// only then. Called on the path's task: implementations hand work on rather than block. A
/// batch redelivered after a crash is told again: steps are at least once.
pub trait AfterCommit: Send + Sync + 'static {
    fn committed(&self, sets: &[RowSet]);
}
