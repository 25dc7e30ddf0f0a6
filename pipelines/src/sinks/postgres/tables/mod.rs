//! The tables a row set is written to, in the order they are written. A capability that adds
//! rows to [`RowSet`] adds its table here: a file, and one line in [`TABLES`].

mod agent_approvals;
mod anomaly;
mod compliance;
mod copied;
pub(crate) mod dead_letters;
mod decisions;
mod events;
mod receipts;
mod replays;
mod resources;
mod staging;

use futures::future::BoxFuture;
use sqlx::PgConnection;

use crate::path::RowSet;

pub use staging::copy_in;
pub use staging::STAGING_TABLES;

/// One table of the event path's rows.
pub(super) trait Table: Sync {
    /// The table's name, as counts report it.
    fn name(&self) -> &'static str;
    /// Whether `sets` hold rows for this table.
    fn has_rows(&self, sets: &[RowSet]) -> bool;
    /// Writes this table's rows of `sets` on `conn` (inside the batch's transaction); returns
    /// the rows newly stored.
    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>>;
}

pub(super) const TABLES: &[&dyn Table] = &[
    &events::EVENTS,
    &decisions::DECISIONS,
    &dead_letters::DeadLetters,
    &replays::Resolves,
    &replays::ReplayFailures,
    &anomaly::TrainingRows,
    &anomaly::Anomalies,
    &anomaly::TrustScores,
    &agent_approvals::AgentApprovals,
    &compliance::Findings,
    &resources::Resources,
    // Last: its log rows stay locked until the commit, so nothing else should follow.
    &receipts::Receipts,
];
