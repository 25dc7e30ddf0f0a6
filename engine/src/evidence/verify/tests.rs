//! Tampering with a bundle, one way at a time: each is named for what it is.

use chrono::{DateTime, Duration, Utc};
use serde_json::value::RawValue;
use tlog_tiles::{record_hash, stored_hashes, Hash, HashReader};

use super::*;
use crate::evidence::{
    log_origin, prove_header, sign_checkpoint, BundleCheckpoint, BundleKey, CheckpointBody,
    HashText, LogKey, MapReader,
};

const ORIGIN_PREFIX: &str = "portcullis.test";

/// An in-memory log: its receipts, stored hashes and signed checkpoints.
struct Log {
    tenant: String,
    receipts: Vec<String>,
    stored: Vec<Hash>,
    key: LogKey,
    notes: Vec<(u64, String)>,
    clock: DateTime<Utc>,
}

impl HashReader for Log {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        Ok(indexes.iter().map(|&i| self.stored[i as usize]).collect())
    }
}

impl Log {
    fn new(tenant: &str, seed: u8) -> Self {
        Self {
            tenant: tenant.into(),
            receipts: Vec::new(),
            stored: Vec::new(),
            key: LogKey::from_seed(ORIGIN_PREFIX, [seed; 32]).unwrap(),
            notes: Vec::new(),
            clock: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    fn append(&mut self, n: usize, salt: &str) {
        for _ in 0..n {
            let i = self.receipts.len();
            let body = format!(
                r#"{{"v":1,"tenant":"{}","n":{i},"salt":"{salt}"}}"#,
                self.tenant
            );
            let new = stored_hashes(i as u64, body.as_bytes(), &*self).unwrap();
            self.stored.extend(new);
            self.receipts.push(body);
        }
    }

    fn size(&self) -> u64 {
        self.receipts.len() as u64
    }

    fn checkpoint(&mut self) {
        self.clock += Duration::seconds(5);
        let body = CheckpointBody {
            origin: log_origin(ORIGIN_PREFIX, &self.tenant),
            size: self.size(),
            root: tlog_tiles::tree_hash(self.size(), &*self).unwrap(),
            time: self.clock,
        };
        self.notes
            .push((self.size(), sign_checkpoint(&body, &self.key).unwrap()));
    }

    /// A bundle of receipts `[first, end)` with every checkpoint.
    fn bundle(&self, first: u64, end: u64) -> (BundleHeader, Vec<BundleLine>) {
        let sizes: Vec<u64> = self.notes.iter().map(|(s, _)| *s).collect();
        let proofs = prove_header(first, &sizes, self).unwrap();
        let header = BundleHeader {
            format: BUNDLE_FORMAT.into(),
            tenant: self.tenant.clone(),
            origin: log_origin(ORIGIN_PREFIX, &self.tenant),
            first,
            end,
            left: proofs.left,
            keys: vec![BundleKey {
                key: self.key.public_text().into(),
                created_at: None,
                retired_at: None,
            }],
            checkpoints: self
                .notes
                .iter()
                .zip(proofs.consistency)
                .map(|((_, note), consistency)| BundleCheckpoint {
                    note: note.clone(),
                    consistency,
                })
                .collect(),
            exported_at: self.clock,
        };
        let lines = (first..end)
            .map(|i| BundleLine {
                index: i,
                tree_hash: self.stored[tlog_tiles::stored_hash_index(0, i) as usize].into(),
                receipt: Some(raw(&self.receipts[i as usize])),
            })
            .collect();
        (header, lines)
    }
}

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap()
}

fn check(header: &BundleHeader, lines: Vec<BundleLine>) -> Report {
    check_trusting(header, lines, None)
}

fn check_trusting(
    header: &BundleHeader,
    lines: Vec<BundleLine>,
    trusted: Option<&[String]>,
) -> Report {
    let mut c = BundleCheck::new(header, trusted).unwrap();
    for line in lines {
        c.receipt(line);
    }
    c.finish(None)
}

/// 40 receipts with checkpoints at 10, 25 and 40.
fn log() -> Log {
    let mut log = Log::new("acme", 1);
    for n in [10, 15, 15] {
        log.append(n, "a");
        log.checkpoint();
    }
    log
}

#[test]
fn an_untouched_bundle_verifies_whole_or_in_part() {
    let log = log();
    let (header, lines) = log.bundle(0, 40);
    let report = check(&header, lines);
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.matched, vec![10, 25, 40]);
    assert_eq!(report.receipts, 40);

    let (header, lines) = log.bundle(13, 25);
    let report = check(&header, lines);
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.matched, vec![25]);
}

#[test]
fn an_edited_receipt_is_named() {
    let (header, mut lines) = log().bundle(0, 40);
    lines[17].receipt = Some(raw(r#"{"v":1,"tenant":"acme","n":17,"salt":"forged"}"#));
    assert_eq!(
        check(&header, lines).findings,
        vec![Finding::Edited { index: 17 }]
    );
}

#[test]
fn a_deleted_receipt_is_named_whether_its_line_or_its_record_is_gone() {
    let (header, mut lines) = log().bundle(0, 40);
    lines.remove(17);
    let findings = check(&header, lines).findings;
    assert!(
        findings.contains(&Finding::Missing { from: 17, to: 18 }),
        "{findings:?}"
    );

    // Its record gone, the log's hash still there.
    let (header, mut lines) = log().bundle(0, 40);
    lines[17].receipt = None;
    assert_eq!(
        check(&header, lines).findings,
        vec![Finding::Deleted { index: 17 }]
    );

    // Deleted and the rest moved up one to hide the hole (what a DELETE and an UPDATE of
    // the indexes in Postgres leave): still the one receipt.
    let (header, mut lines) = log().bundle(0, 40);
    for i in 17..39 {
        lines[i].receipt = lines[i + 1].receipt.take();
    }
    lines[39].receipt = None;
    assert_eq!(
        check(&header, lines).findings,
        vec![Finding::Deleted { index: 17 }]
    );
}

#[test]
fn reordered_receipts_are_named() {
    let (header, mut lines) = log().bundle(0, 40);
    let a = lines[20].receipt.take();
    lines[20].receipt = lines[21].receipt.take();
    lines[21].receipt = a;
    let findings = check(&header, lines).findings;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        matches!(findings[0], Finding::Reordered { index, position }
            if (index, position) == (20, 21) || (index, position) == (21, 20)),
        "{findings:?}"
    );
}

#[test]
fn inserted_receipts_are_named() {
    let (header, mut lines) = log().bundle(0, 40);
    // Moved down one to make room, the last pushed out.
    for i in (31..40).rev() {
        lines[i].receipt = lines[i - 1].receipt.take();
    }
    lines[30].receipt = Some(raw(r#"{"v":1,"tenant":"acme","n":"forged"}"#));
    let findings = check(&header, lines).findings;
    assert!(
        findings.contains(&Finding::Inserted { position: 30 }),
        "{findings:?}"
    );

    // A second line for an index, and one past the signed range.
    let (header, mut lines) = log().bundle(0, 40);
    let copy = BundleLine {
        index: 5,
        tree_hash: lines[5].tree_hash,
        receipt: Some(raw(r#"{"v":1,"tenant":"acme"}"#)),
    };
    lines.insert(6, copy);
    lines.push(BundleLine {
        index: 40,
        tree_hash: HashText([0; 32]),
        receipt: Some(raw(r#"{"v":1,"tenant":"acme"}"#)),
    });
    let findings = check(&header, lines).findings;
    assert_eq!(
        findings,
        vec![
            Finding::Duplicate { index: 5 },
            Finding::OutOfRange { index: 40 }
        ]
    );
}

#[test]
fn receipts_and_hashes_rewritten_together_are_caught_between_checkpoints() {
    let (header, mut lines) = log().bundle(0, 40);
    let forged = r#"{"v":1,"tenant":"acme","n":12,"salt":"forged"}"#;
    lines[12].receipt = Some(raw(forged));
    lines[12].tree_hash = record_hash(forged.as_bytes()).into();
    assert_eq!(
        check(&header, lines).findings,
        vec![Finding::Rewritten { from: 10, to: 25 }]
    );
}

#[test]
fn another_tenants_receipt_is_named() {
    let (header, mut lines) = log().bundle(0, 40);
    let other = r#"{"v":1,"tenant":"globex"}"#;
    lines[3].receipt = Some(raw(other));
    let findings = check(&header, lines).findings;
    assert!(findings.contains(&Finding::WrongTenant {
        index: 3,
        tenant: "globex".into()
    }));
    assert!(findings.contains(&Finding::Edited { index: 3 }));
}

#[test]
fn an_altered_checkpoint_fails_its_signature() {
    let (mut header, lines) = log().bundle(0, 40);
    header.checkpoints[1].note = header.checkpoints[1].note.replacen("\n25\n", "\n26\n", 1);
    let findings = check(&header, lines).findings;
    assert!(
        matches!(&findings[0], Finding::BadSignature { checkpoint: 1, .. }),
        "{findings:?}"
    );
}

#[test]
fn a_key_the_verifier_does_not_trust_is_named() {
    let (header, lines) = log().bundle(0, 40);
    let stranger = LogKey::from_seed(ORIGIN_PREFIX, [77; 32]).unwrap();
    let report = check_trusting(&header, lines, Some(&[stranger.public_text().to_owned()]));
    let unknown = report
        .findings
        .iter()
        .filter(|f| matches!(f, Finding::UnknownKey { .. }))
        .count();
    assert_eq!(unknown, 3, "{:?}", report.findings);
    assert!(report.findings.contains(&Finding::NoCheckpoint { end: 40 }));
}

#[test]
fn a_forked_log_is_caught() {
    // The same key signs a second history of the same log: same size, another root.
    let mut log = log();
    let mut fork = Log::new("acme", 1);
    fork.append(40, "b");
    fork.clock = log.clock;
    fork.checkpoint();
    log.clock = fork.clock;
    log.notes.push(fork.notes[0].clone());
    let (header, lines) = log.bundle(0, 40);
    let findings = check(&header, lines).findings;
    assert!(
        findings.contains(&Finding::Forked { from: 40, to: 40 }),
        "{findings:?}"
    );

    // A larger checkpoint that does not extend the last one.
    let mut log = self::log();
    let mut fork = Log::new("acme", 1);
    fork.append(50, "b");
    fork.clock = log.clock;
    fork.checkpoint();
    // The consistency proof the forger can give comes from their own history.
    let forged = fork.notes[0].clone();
    let (mut header, lines) = log.bundle(0, 40);
    let proof = prove_header(0, &[40, 50], &fork).unwrap().consistency[1].clone();
    header.checkpoints.push(BundleCheckpoint {
        note: forged.1,
        consistency: proof,
    });
    log.notes.clear();
    let findings = check(&header, lines).findings;
    assert_eq!(findings, vec![Finding::Forked { from: 40, to: 50 }]);
}

#[test]
fn a_rolled_back_log_is_caught() {
    let mut log = log();
    // The log loses its last 15 receipts and its key signs the smaller tree.
    log.receipts.truncate(25);
    log.checkpoint();
    let (header, lines) = log.bundle(0, 25);
    let findings = check(&header, lines).findings;
    assert_eq!(findings, vec![Finding::RolledBack { from: 40, to: 25 }]);
}

#[test]
fn hashes_fetched_in_two_passes_prove_the_same_header() {
    let log = log();
    let sizes = [10, 25, 40];
    let needed = crate::evidence::indexes_needed(|r| prove_header(13, &sizes, r));
    let fetched = MapReader(
        needed
            .iter()
            .map(|&i| (i, log.stored[i as usize]))
            .collect(),
    );
    assert_eq!(
        prove_header(13, &sizes, &fetched).unwrap(),
        prove_header(13, &sizes, &log).unwrap()
    );
}

#[test]
fn altered_log_hashes_under_genuine_receipts_are_named_as_such() {
    let (header, mut lines) = log().bundle(0, 40);
    lines[5].tree_hash = HashText([9; 32]);
    assert_eq!(
        check(&header, lines).findings,
        vec![Finding::HashesAltered { from: 5, to: 10 }]
    );
}

#[test]
fn a_checkpoint_signed_after_its_key_was_retired_is_named() {
    let log = log();
    let (mut header, lines) = log.bundle(0, 40);
    // Retired between the first checkpoint (+5 s) and the second (+10 s).
    header.keys[0].retired_at = Some(DateTime::from_timestamp(1_700_000_007, 0).unwrap());
    let findings = check(&header, lines).findings;
    let after: Vec<usize> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::SignedAfterRetirement { checkpoint, .. } => Some(*checkpoint),
            _ => None,
        })
        .collect();
    assert_eq!(after, vec![1, 2], "{findings:?}");
}
