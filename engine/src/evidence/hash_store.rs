//! Stored hashes read in two passes. The tree functions of `tlog_tiles` read hashes through a
//! synchronous [`HashReader`], each with a single call whose indexes do not depend on the
//! hashes read; a store across the network (Postgres) is asked first which indexes a
//! computation needs ([`indexes_needed`]), fetches them, and runs it again on a [`MapReader`].

use std::cell::RefCell;
use std::collections::HashMap;

use tlog_tiles::{Hash, HashReader};

/// Records the indexes asked for and answers with zero hashes.
#[derive(Default)]
pub struct IndexRecorder(RefCell<Vec<u64>>);

impl HashReader for IndexRecorder {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        self.0.borrow_mut().extend_from_slice(indexes);
        Ok(vec![Hash::default(); indexes.len()])
    }
}

/// The indexes `compute` reads, sorted and without repeats.
pub fn indexes_needed<T>(compute: impl FnOnce(&IndexRecorder) -> T) -> Vec<u64> {
    let recorder = IndexRecorder::default();
    let _ = compute(&recorder);
    let mut indexes = recorder.0.into_inner();
    indexes.sort_unstable();
    indexes.dedup();
    indexes
}

/// Hashes fetched ahead, by stored-hash index; a missing one is an error, not a zero.
#[derive(Debug, Default)]
pub struct MapReader(pub HashMap<u64, Hash>);

impl HashReader for MapReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|i| {
                self.0
                    .get(i)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}
