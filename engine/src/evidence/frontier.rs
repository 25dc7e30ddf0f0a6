//! A tree's right edge: the roots of the perfect subtrees its leaves decompose into, largest
//! first (one per set bit of its size). Enough to add leaves and to give the RFC 6962 root of
//! every size on the way, in O(log n) memory: how a verifier checks a million receipts
//! without holding them.

use tlog_tiles::{node_hash, sub_tree_index, Hash, EMPTY_HASH};

use super::EvidenceError;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frontier {
    size: u64,
    stack: Vec<Hash>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves, from the hashes of the perfect subtrees that
    /// cover `[0, size)`, left to right (what [`Frontier::indexes`] names).
    pub fn resume(size: u64, hashes: Vec<Hash>) -> Result<Self, EvidenceError> {
        if hashes.len() != size.count_ones() as usize {
            return Err(EvidenceError::FrontierShape {
                size,
                expected: size.count_ones(),
                got: hashes.len(),
            });
        }
        Ok(Self {
            size,
            stack: hashes,
        })
    }

    /// The stored-hash indexes (Go sumdb layout) of the subtrees [`Frontier::resume`] takes.
    pub fn indexes(size: u64) -> Vec<u64> {
        sub_tree_index(0, size, Vec::new())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree hashes, left to right.
    pub fn hashes(&self) -> &[Hash] {
        &self.stack
    }

    /// Adds a leaf by its hash (`leaf_hash(receipt)`).
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _, _| {});
    }

    /// Adds a leaf and tells `completed` every subtree it completes as `(level, node, hash)`,
    /// the leaf itself first (level 0, node = its index): the hashes a log stores.
    pub fn push_recording(&mut self, leaf: Hash, completed: &mut Vec<(u8, u64, Hash)>) {
        self.push_with(leaf, |level, node, hash| {
            completed.push((level, node, hash))
        });
    }

    fn push_with(&mut self, leaf: Hash, mut completed: impl FnMut(u8, u64, Hash)) {
        let mut n = self.size;
        completed(0, n, leaf);
        let mut h = leaf;
        let mut level = 0u8;
        // Each trailing set bit is a subtree of the new one's size that it completes.
        while n & 1 == 1 {
            let left = self.stack.pop().expect("one hash per set bit");
            h = node_hash(left, h);
            n >>= 1;
            level += 1;
            completed(level, n, h);
        }
        self.stack.push(h);
        self.size += 1;
    }

    /// The RFC 6962 root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut hashes = self.stack.iter().rev();
        let Some(&last) = hashes.next() else {
            return EMPTY_HASH;
        };
        hashes.fold(last, |right, &left| node_hash(left, right))
    }
}

#[cfg(test)]
mod tests {
    use tlog_tiles::{record_hash, stored_hashes, tree_hash, HashReader};

    use super::*;

    struct Stored(Vec<Hash>);

    impl HashReader for Stored {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
            Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
        }
    }

    /// Every root and every resumed frontier agrees with tlog_tiles' own tree over the
    /// same records, size by size.
    #[test]
    fn agrees_with_the_stored_tree_at_every_size() {
        let mut stored = Stored(Vec::new());
        let mut frontier = Frontier::default();
        for n in 0..300u64 {
            let data = format!("receipt {n}");
            let new = stored_hashes(n, data.as_bytes(), &stored).unwrap();
            let at = stored.0.len();
            stored.0.extend(new);
            let mut completed = Vec::new();
            frontier.push_recording(record_hash(data.as_bytes()), &mut completed);
            // The same hashes, in the same places, as the Go sumdb layout stores.
            assert_eq!(completed.len(), stored.0.len() - at);
            for (k, (level, node, hash)) in completed.into_iter().enumerate() {
                assert_eq!(tlog_tiles::stored_hash_index(level, node) as usize, at + k);
                assert_eq!(stored.0[at + k], hash);
            }
            let size = n + 1;
            assert_eq!(
                frontier.root(),
                tree_hash(size, &stored).unwrap(),
                "size {size}"
            );
            let edge = stored.read_hashes(&Frontier::indexes(size)).unwrap();
            let resumed = Frontier::resume(size, edge).unwrap();
            assert_eq!(resumed, frontier, "size {size}");
        }
    }

    #[test]
    fn known_roots() {
        assert_eq!(Frontier::default().root(), EMPTY_HASH);
        // RFC 6962 test vector: the root of the empty leaf alone.
        let mut f = Frontier::default();
        f.push(record_hash(b""));
        assert_eq!(
            hex::encode(f.root().0),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert!(Frontier::resume(3, vec![Hash::default()]).is_err());
    }
}
