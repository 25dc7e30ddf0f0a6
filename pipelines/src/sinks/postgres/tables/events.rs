//! `events`: judged events, masked as their bundle says.

use super::copied::CopiedTable;
use crate::sinks::postgres::copy_binary::{self, EVENT_COLUMNS};

pub(in crate::sinks::postgres) const EVENTS: CopiedTable = CopiedTable {
    name: "events",
    columns: EVENT_COLUMNS,
    holds: |set| !set.events.is_empty(),
    encode: |sets| {
        copy_binary::events(sets.iter().flat_map(|s| {
            let raw = |i: usize| s.raw_json.get(i).map(Vec::as_slice);
            s.events.iter().enumerate().map(move |(i, e)| (e, raw(i)))
        }))
    },
};
