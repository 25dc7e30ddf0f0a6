//! The offline check of an evidence bundle: signatures, the checkpoints against each other,
//! and the receipts against the checkpoints, naming exactly what is wrong.
//!
//! Receipts are checked twice at each checkpoint size the bundle reaches: the root of the
//! receipts as they are (each hashed from its bytes), and the root of the leaf hashes the
//! log itself holds (`tree_hash`). When the first matches, all is well. When only the second
//! does, the log's hashes are authentic (they make the signed root), so comparing them with
//! the receipts names every change: a diff of the two sequences tells edited, deleted,
//! inserted and reordered receipts apart. When neither does, both the receipts and the log's
//! hashes were changed, and the check says between which checkpoints.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use serde::Deserialize;
use similar::{capture_diff_slices_deadline, Algorithm, DiffOp};
use tlog_tiles::{check_tree, record_hash, Hash};

use super::checkpoint::{open_checkpoint, verifiers, CheckpointBody, OpenedCheckpoint};
use super::{BundleHeader, BundleLine, EvidenceError, Frontier, BUNDLE_FORMAT};

/// What is wrong with a bundle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Finding {
    /// Listed checkpoint `checkpoint` (0-based) is signed by a key the check does not trust.
    UnknownKey {
        checkpoint: usize,
        key: String,
    },
    BadSignature {
        checkpoint: usize,
        key: String,
    },
    WrongOrigin {
        checkpoint: usize,
        origin: String,
    },
    /// A checkpoint signed later is smaller than one signed before it.
    RolledBack {
        from: u64,
        to: u64,
    },
    /// Two signed checkpoints that cannot both be true of one append-only log.
    Forked {
        from: u64,
        to: u64,
    },
    NoCheckpoint {
        end: u64,
    },
    /// Listed checkpoint `checkpoint` was signed after its key was retired.
    SignedAfterRetirement {
        checkpoint: usize,
        key: String,
    },
    /// The receipt at `index` is not the one the log signed there.
    Edited {
        index: u64,
    },
    /// The log signed a receipt at `index`; the bundle does not have it.
    Deleted {
        index: u64,
    },
    /// Receipts `from..to` are not in the bundle at all (lines missing).
    Missing {
        from: u64,
        to: u64,
    },
    /// A receipt the log never signed is at `position`.
    Inserted {
        position: u64,
    },
    /// The receipt signed at `index` is at `position`.
    Reordered {
        index: u64,
        position: u64,
    },
    /// More than one line for `index`.
    Duplicate {
        index: u64,
    },
    OutOfRange {
        index: u64,
    },
    WrongTenant {
        index: u64,
        tenant: String,
    },
    /// Receipts and the log's own hashes both changed between these sizes.
    Rewritten {
        from: u64,
        to: u64,
    },
    /// The receipts are the ones signed, but the log's own leaf hashes for them differ.
    HashesAltered {
        from: u64,
        to: u64,
    },
    /// A checkpoint whose root could not be recomputed (receipts before it are missing).
    Unchecked {
        size: u64,
    },
    Malformed {
        what: String,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use Finding::*;
        match self {
            UnknownKey { checkpoint, key } => write!(
                f,
                "checkpoint #{checkpoint} is signed by an unknown key ({key})"
            ),
            BadSignature { checkpoint, key } => write!(
                f,
                "checkpoint #{checkpoint} has a bad signature: it does not verify with key {key} (the checkpoint was altered)"
            ),
            WrongOrigin { checkpoint, origin } => write!(
                f,
                "checkpoint #{checkpoint} belongs to another log ({origin})"
            ),
            RolledBack { from, to } => write!(
                f,
                "the log was rolled back: a checkpoint of size {to} was signed after one of size {from}"
            ),
            Forked { from, to } => write!(
                f,
                "the log forked: the checkpoint of size {to} is not an append-only extension of the one of size {from}"
            ),
            SignedAfterRetirement { checkpoint, key } => write!(
                f,
                "checkpoint #{checkpoint} was signed by key {key} after the key was retired (a retired key is not to sign: was it leaked?)"
            ),
            HashesAltered { from, to } => write!(
                f,
                "the log's own leaf hashes between index {from} and {to} were altered; the receipts themselves are the ones signed"
            ),
            NoCheckpoint { end } => write!(
                f,
                "no valid checkpoint of size {end} covers the bundle's last receipt: its receipts are not signed"
            ),
            Edited { index } => write!(
                f,
                "receipt {index} was edited: it is not the receipt the log signed at that index"
            ),
            Deleted { index } => write!(
                f,
                "receipt {index} was deleted: the log signed it, the bundle does not have it"
            ),
            Missing { from, to } if to - from == 1 => write!(
                f,
                "receipt {from} was deleted: its line is missing from the bundle"
            ),
            Missing { from, to } => write!(
                f,
                "receipts {from} to {} were deleted: their lines are missing from the bundle",
                to - 1
            ),
            Inserted { position } => write!(
                f,
                "a receipt the log never signed was inserted at index {position}"
            ),
            Reordered { index, position } => write!(
                f,
                "receipts were reordered: the receipt signed at index {index} is at index {position}"
            ),
            Duplicate { index } => write!(
                f,
                "index {index} appears more than once: a receipt was inserted"
            ),
            OutOfRange { index } => write!(
                f,
                "receipt {index} lies outside the bundle's signed range: it was inserted"
            ),
            WrongTenant { index, tenant } => {
                write!(f, "receipt {index} is another tenant's ({tenant})")
            }
            Rewritten { from, to } => write!(
                f,
                "receipts between index {from} and {to} and the log's own hashes for them were both changed: together they no longer make the root signed at size {to}"
            ),
            Unchecked { size } => write!(
                f,
                "the checkpoint of size {size} could not be checked: receipts before it are missing"
            ),
            Malformed { what } => write!(f, "malformed bundle: {what}"),
        }
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub tenant: String,
    pub receipts: u64,
    pub first: u64,
    pub end: u64,
    /// Checkpoints whose signatures verified.
    pub checkpoints: usize,
    /// Checkpoint sizes the receipts were checked against and matched.
    pub matched: Vec<u64>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Receipts from the first index whose receipt differs from the log's hash: what the final
/// diff compares.
#[derive(Default)]
struct Tail {
    start: u64,
    /// The log's leaf hashes, one per index from `start`.
    stated: Vec<[u8; 32]>,
    /// The receipts' hashes, with their indexes; a receipt that is gone has none.
    body: Vec<[u8; 32]>,
    body_at: Vec<u64>,
}

/// A bundle being checked: made from its header, fed its receipt lines in order, finished.
pub struct BundleCheck {
    tenant: String,
    first: u64,
    end: u64,
    checkpoints: usize,
    /// `(size, root)` of valid checkpoints within `[first, end]`, by size.
    targets: Vec<(u64, Hash)>,
    next_target: usize,
    body: Option<Frontier>,
    stated: Option<Frontier>,
    next_index: u64,
    seen_beyond: BTreeSet<u64>,
    tail: Option<Tail>,
    /// The log's hashes are authentic up to this size.
    authentic_to: u64,
    rewritten: bool,
    matched: Vec<u64>,
    receipts: u64,
    findings: Vec<Finding>,
}

#[derive(Deserialize)]
struct TenantOnly<'a> {
    #[serde(borrow)]
    tenant: std::borrow::Cow<'a, str>,
}

impl BundleCheck {
    /// Checks the header: keys, signatures, the checkpoints against each other. `trusted`,
    /// when given, replaces the bundle's own keys (a third party pins the log's key).
    pub fn new(header: &BundleHeader, trusted: Option<&[String]>) -> Result<Self, EvidenceError> {
        if header.format != BUNDLE_FORMAT {
            return Err(EvidenceError::MalformedCheckpoint(format!(
                "not an evidence bundle: format {:?}, expected {BUNDLE_FORMAT:?}",
                header.format
            )));
        }
        let mut findings = Vec::new();
        let bundle_keys: Vec<String> = header.keys.iter().map(|k| k.key.clone()).collect();
        let known = verifiers(trusted.unwrap_or(&bundle_keys))?;
        let mut valid: Vec<(usize, OpenedCheckpoint)> = Vec::new();
        for (n, cp) in header.checkpoints.iter().enumerate() {
            match open_checkpoint(&cp.note, &known) {
                Ok(opened) if opened.body.origin != header.origin => {
                    findings.push(Finding::WrongOrigin {
                        checkpoint: n,
                        origin: opened.body.origin,
                    })
                }
                Ok(opened) => {
                    // A key retired before it signed: what a leaked key would do.
                    let retired = header.keys.iter().find_map(|k| {
                        let label: Vec<&str> = k.key.splitn(3, '+').take(2).collect();
                        (label.join("+") == opened.signed_by)
                            .then_some(k.retired_at)
                            .flatten()
                    });
                    if retired.is_some_and(|at| opened.body.time > at) {
                        findings.push(Finding::SignedAfterRetirement {
                            checkpoint: n,
                            key: opened.signed_by.clone(),
                        });
                    }
                    valid.push((n, opened))
                }
                Err(EvidenceError::UnknownKey(key)) => {
                    findings.push(Finding::UnknownKey { checkpoint: n, key })
                }
                Err(EvidenceError::BadSignature(key)) => {
                    findings.push(Finding::BadSignature { checkpoint: n, key })
                }
                Err(e) => findings.push(Finding::Malformed {
                    what: format!("checkpoint #{n}: {e}"),
                }),
            }
        }
        // Rolled back: in signing order, a tree smaller than one signed before it.
        let mut by_time: Vec<&CheckpointBody> = valid.iter().map(|(_, c)| &c.body).collect();
        by_time.sort_by_key(|b| b.time);
        let mut largest = 0;
        for b in by_time {
            if b.size < largest {
                findings.push(Finding::RolledBack {
                    from: largest,
                    to: b.size,
                });
            }
            largest = largest.max(b.size);
        }
        // Forked: two roots for one size, or a tree that does not extend the one listed just
        // before it (the proof in a checkpoint is from its list neighbour, so a pair with a
        // checkpoint between them that did not open is not checked here; the receipts are).
        for pair in valid.windows(2) {
            let ((m, before), (n, after)) = (&pair[0], &pair[1]);
            let (b, a) = (&before.body, &after.body);
            if a.size == b.size {
                if a.root != b.root {
                    findings.push(Finding::Forked {
                        from: b.size,
                        to: a.size,
                    });
                }
            } else if *n == m + 1 && b.size > 0 && a.size > b.size {
                let proof: Vec<Hash> = header.checkpoints[*n]
                    .consistency
                    .iter()
                    .map(|&h| h.into())
                    .collect();
                if check_tree(&proof, a.size, a.root, b.size, b.root).is_err() {
                    findings.push(Finding::Forked {
                        from: b.size,
                        to: a.size,
                    });
                }
            }
        }
        let mut targets: Vec<(u64, Hash)> = valid
            .iter()
            .map(|(_, c)| (c.body.size, c.body.root))
            .filter(|(size, _)| (header.first..=header.end).contains(size))
            .collect();
        targets.sort_by_key(|(size, _)| *size);
        targets.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        if !targets.iter().any(|(size, _)| *size == header.end) {
            findings.push(Finding::NoCheckpoint { end: header.end });
        }
        let left: Vec<Hash> = header.left.iter().map(|&h| h.into()).collect();
        let frontier = match Frontier::resume(header.first, left) {
            Ok(f) => Some(f),
            Err(e) => {
                findings.push(Finding::Malformed {
                    what: format!("left hashes: {e}"),
                });
                None
            }
        };
        let mut check = Self {
            tenant: header.tenant.clone(),
            first: header.first,
            end: header.end,
            checkpoints: valid.len(),
            targets,
            next_target: 0,
            stated: frontier.clone(),
            body: frontier,
            next_index: header.first,
            seen_beyond: BTreeSet::new(),
            tail: None,
            authentic_to: header.first,
            rewritten: false,
            matched: Vec::new(),
            receipts: 0,
            findings,
        };
        check.compare_at_targets();
        Ok(check)
    }

    /// Feeds the next line of the bundle (`line_no` counts from 1, the header being line 1).
    pub fn line(&mut self, line_no: u64, text: &str) {
        match serde_json::from_str::<BundleLine>(text) {
            Ok(line) => self.receipt(line),
            Err(e) => self.findings.push(Finding::Malformed {
                what: format!("line {line_no}: {e}"),
            }),
        }
    }

    /// Notes a line that could not be read (not UTF-8, too long).
    pub fn unreadable(&mut self, line_no: u64, why: &str) {
        self.findings.push(Finding::Malformed {
            what: format!("line {line_no}: {why}"),
        });
    }

    /// Feeds one receipt line.
    pub fn receipt(&mut self, line: BundleLine) {
        let index = line.index;
        if index >= self.end {
            if !self.seen_beyond.insert(index) {
                self.findings.push(Finding::Duplicate { index });
            } else {
                self.findings.push(Finding::OutOfRange { index });
            }
            return;
        }
        if index < self.next_index {
            self.findings.push(if index < self.first {
                Finding::OutOfRange { index }
            } else {
                Finding::Duplicate { index }
            });
            return;
        }
        if index > self.next_index {
            self.findings.push(Finding::Missing {
                from: self.next_index,
                to: index,
            });
            // Roots cannot be recomputed past a hole.
            self.body = None;
            self.stated = None;
        }
        self.next_index = index + 1;
        self.receipts += 1;
        let stated: Hash = line.tree_hash.into();
        let body = line.receipt.as_ref().map(|raw| {
            let bytes = raw.get().as_bytes();
            if let Ok(r) = serde_json::from_slice::<TenantOnly>(bytes) {
                if r.tenant != self.tenant {
                    self.findings.push(Finding::WrongTenant {
                        index,
                        tenant: r.tenant.into_owned(),
                    });
                }
            }
            record_hash(bytes)
        });
        if body != Some(stated) && self.tail.is_none() {
            self.tail = Some(Tail {
                start: index,
                ..Default::default()
            });
        }
        if let Some(tail) = &mut self.tail {
            tail.stated.push(stated.0);
            if let Some(h) = body {
                tail.body.push(h.0);
                tail.body_at.push(index);
            }
        }
        if let (Some(b), Some(s)) = (&mut self.body, &mut self.stated) {
            // A receipt that is gone is told by the diff; the roots go on without it.
            b.push(body.unwrap_or(stated));
            s.push(stated);
            self.compare_at_targets();
        }
    }

    /// Compares the roots with every checkpoint of the current size.
    fn compare_at_targets(&mut self) {
        let (Some(body), Some(stated)) = (&self.body, &self.stated) else {
            return;
        };
        let size = body.size();
        while let Some(&(target, root)) = self.targets.get(self.next_target) {
            if target != size {
                break;
            }
            self.next_target += 1;
            if self.rewritten {
                continue;
            }
            if body.root() == root {
                self.matched.push(size);
                self.authentic_to = size;
                // The receipts are the ones signed: where the log's own hashes differed, the
                // hashes were altered, not the receipts.
                // (A receipt that is gone stands in the root by the log's hash: the tail
                // then stays, for the diff to name it.)
                if self
                    .tail
                    .as_ref()
                    .is_some_and(|t| t.body.len() == t.stated.len())
                {
                    let start = self.tail.take().map_or(0, |t| t.start);
                    self.findings.push(Finding::HashesAltered {
                        from: start,
                        to: size,
                    });
                }
            } else if stated.root() == root {
                self.authentic_to = size;
            } else {
                self.findings.push(Finding::Rewritten {
                    from: self.authentic_to,
                    to: size,
                });
                self.rewritten = true;
            }
        }
    }

    /// Ends the check. A diff that would run past `deadline` gives a coarser, still correct
    /// account of what changed.
    pub fn finish(mut self, deadline: Option<Instant>) -> Report {
        if self.next_index < self.end {
            self.findings.push(Finding::Missing {
                from: self.next_index,
                to: self.end,
            });
        }
        for &(size, _) in &self.targets[self.next_target..] {
            if size > self.first || self.body.is_none() {
                self.findings.push(Finding::Unchecked { size });
            }
        }
        if let Some(tail) = self.tail.take() {
            if self.authentic_to > tail.start {
                self.findings
                    .extend(changes(&tail, self.authentic_to, deadline));
            }
        }
        self.findings.sort();
        self.findings.dedup();
        Report {
            tenant: self.tenant,
            receipts: self.receipts,
            first: self.first,
            end: self.end,
            checkpoints: self.checkpoints,
            matched: self.matched,
            findings: self.findings,
        }
    }
}

/// What changed between the log's hashes and the receipts, over the tail's indexes below
/// `authentic_to` (where the hashes are known to make a signed root).
fn changes(tail: &Tail, authentic_to: u64, deadline: Option<Instant>) -> Vec<Finding> {
    let stated = &tail.stated[..((authentic_to - tail.start) as usize).min(tail.stated.len())];
    let kept = tail.body_at.partition_point(|&at| at < authentic_to);
    let (body, body_at) = (&tail.body[..kept], &tail.body_at[..kept]);
    let ops = capture_diff_slices_deadline(Algorithm::Myers, stated, body, deadline);
    // Signed receipts not found where they were (offsets into `stated`) and receipts the log
    // did not sign where they are (offsets into `body`).
    let mut unsigned_at: Vec<usize> = Vec::new();
    let mut lost: BTreeSet<usize> = BTreeSet::new();
    for op in ops {
        match op {
            DiffOp::Equal { .. } => {}
            DiffOp::Delete {
                old_index, old_len, ..
            } => lost.extend(old_index..old_index + old_len),
            DiffOp::Insert {
                new_index, new_len, ..
            } => unsigned_at.extend(new_index..new_index + new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                lost.extend(old_index..old_index + old_len);
                unsigned_at.extend(new_index..new_index + new_len);
            }
        }
    }
    let mut signed_where: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
    for &i in &lost {
        signed_where.entry(stated[i]).or_default().push(i);
    }
    let signed_index = |offset: usize| tail.start + offset as u64;
    let mut findings = Vec::new();
    let mut edited_or_new = Vec::new();
    for p in unsigned_at {
        let moved_from = signed_where
            .get_mut(&body[p])
            .and_then(|places| places.pop())
            .filter(|q| lost.remove(q));
        match moved_from {
            // A coarse diff (past its deadline) may pair a receipt with its own place.
            Some(q) if signed_index(q) == body_at[p] => {}
            Some(q) => findings.push(Finding::Reordered {
                index: signed_index(q),
                position: body_at[p],
            }),
            None => edited_or_new.push(body_at[p]),
        }
    }
    for position in edited_or_new {
        let offset = (position - tail.start) as usize;
        if lost.remove(&offset) {
            findings.push(Finding::Edited { index: position });
        } else {
            findings.push(Finding::Inserted { position });
        }
    }
    findings.extend(lost.into_iter().map(|q| Finding::Deleted {
        index: signed_index(q),
    }));
    findings
}

#[cfg(test)]
mod tests;
