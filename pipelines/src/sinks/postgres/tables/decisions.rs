//! `decisions`: one per judged event, partitioned like events by the time of the event.

use super::copied::CopiedTable;
use crate::sinks::postgres::copy_binary::{self, DECISION_COLUMNS};

pub(in crate::sinks::postgres) const DECISIONS: CopiedTable = CopiedTable {
    name: "decisions",
    columns: DECISION_COLUMNS,
    holds: |set| !set.decisions.is_empty(),
    encode: |sets| copy_binary::decisions(sets.iter().flat_map(|s| &s.decisions)),
};
