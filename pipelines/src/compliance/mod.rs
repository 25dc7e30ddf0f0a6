//! Compliance on the engine's edges (docs/compliance.md): violations in Postgres and their
//! lifecycle. The packs' controls and the lifecycle's rules are the engine's
//! (`portcullis_engine::compliance`); findings are written with their decisions by the sink.

mod violations;

pub use violations::{
    change_status, evidence, get, history, list, ChangeError, FindingRow, HistoryRow,
    ViolationQuery, ViolationRow,
};
