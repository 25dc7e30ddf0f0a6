//! `portcullis bench evidence`: how fast `portcullis verify` checks a bundle, against reading
//! and parsing the same file alone, in one run on one core.
//!
//! A tenant's log of N receipts shaped like the engine's (stream decisions with reasons,
//! digests and scores) is built in memory with a checkpoint every K receipts, written to a
//! bundle file exactly as `evidence export` writes one, then read twice: once only parsing
//! each line (the ceiling), once checked by the verifier (hashing every receipt, recomputing
//! the roots, checking every checkpoint's signature and consistency proof).

use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::time::Instant;

use anyhow::bail;
use chrono::{DateTime, Duration, Utc};
use portcullis_engine::evidence::{
    leaf_hash, log_origin, prove_header, sign_checkpoint, BundleCheckpoint, BundleHeader,
    BundleKey, BundleLine, CheckpointBody, Frontier, Hash, HashReader, LogKey, Outcome, Receipt,
    ReceiptKind, TreeError, BUNDLE_FORMAT, RECEIPT_VERSION,
};
use rand::{Rng, SeedableRng};
use serde_json::value::RawValue;

use crate::evidence::check_bundle;

#[derive(Debug, Clone)]
pub struct EvidenceBenchOptions {
    pub receipts: u64,
    pub checkpoint_every: u64,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub struct EvidenceBenchReport {
    pub receipts: u64,
    pub checkpoints: usize,
    pub bundle_bytes: u64,
    pub build_secs: f64,
    /// Reading and parsing every line, nothing checked.
    pub parse_secs: f64,
    /// The verifier over the same file.
    pub verify_secs: f64,
}

impl EvidenceBenchReport {
    pub fn parse_rate(&self) -> f64 {
        self.receipts as f64 / self.parse_secs
    }

    pub fn verify_rate(&self) -> f64 {
        self.receipts as f64 / self.verify_secs
    }
}

/// The log's stored hashes, in Go sumdb order (as `Frontier::push_recording` gives them).
struct Stored(Vec<Hash>);

impl HashReader for Stored {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| {
                self.0
                    .get(i as usize)
                    .copied()
                    .ok_or(TreeError::IndexesNotInTree)
            })
            .collect()
    }
}

pub fn run_evidence_bench(opts: &EvidenceBenchOptions) -> anyhow::Result<EvidenceBenchReport> {
    let started = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let key = LogKey::from_seed("portcullis.bench", rng.random())?;
    let origin = log_origin("portcullis.bench", "acme");
    let t0: DateTime<Utc> = Utc::now();
    let file = tempfile::NamedTempFile::new()?;
    let body_file = tempfile::tempfile()?;
    let mut bodies = BufWriter::new(body_file.try_clone()?);
    let mut stored = Stored(Vec::with_capacity(2 * opts.receipts as usize));
    let mut frontier = Frontier::default();
    let mut completed = Vec::new();
    let mut notes = Vec::new();
    let actions = [
        "GetObject",
        "PutObject",
        "AssumeRole",
        "CreateAccessKey",
        "RunInstances",
    ];
    for i in 0..opts.receipts {
        let at = t0 + Duration::milliseconds(i as i64);
        let allowed = rng.random_bool(0.9);
        let receipt = Receipt {
            v: RECEIPT_VERSION,
            tenant: "acme".into(),
            kind: ReceiptKind::Event,
            decision_id: uuid::Uuid::from_u128(rng.random()),
            subject: format!("{:032x}", rng.random::<u128>()),
            event_time: Some(at),
            principal: Some(format!(
                "arn:aws:iam::111111111111:user/user{}",
                rng.random_range(0..500)
            )),
            action: Some(actions[rng.random_range(0..actions.len())].into()),
            outcome: Outcome::of(allowed),
            reasons: if allowed {
                serde_json::json!([])
            } else {
                serde_json::json!(["CIS 4.4: IAM policy changes need an MFA session"])
            },
            rule: "data.tenants.acme.decision".into(),
            policy_revision: "acme-2026.12.2".into(),
            policy_digest: format!("sha256:{:064x}", 7u8),
            input_digest: format!(
                "sha256:{:032x}{:032x}",
                rng.random::<u128>(),
                rng.random::<u128>()
            ),
            anomaly_score: Some(rng.random_range(0.3..0.8)),
            protection_level: None,
            decided_at: at,
        };
        let bytes = receipt.to_bytes();
        completed.clear();
        frontier.push_recording(leaf_hash(&bytes), &mut completed);
        stored.0.extend(completed.iter().map(|c| c.2));
        bodies.write_all(&bytes)?;
        bodies.write_all(b"\n")?;
        let size = i + 1;
        if size % opts.checkpoint_every == 0 || size == opts.receipts {
            let body = CheckpointBody {
                origin: origin.clone(),
                size,
                root: frontier.root(),
                time: at,
            };
            notes.push((size, sign_checkpoint(&body, &key)?));
        }
    }
    bodies.flush()?;
    drop(bodies);
    let sizes: Vec<u64> = notes.iter().map(|(s, _)| *s).collect();
    let proofs = prove_header(0, &sizes, &stored)?;
    let header = BundleHeader {
        format: BUNDLE_FORMAT.into(),
        tenant: "acme".into(),
        origin,
        first: 0,
        end: opts.receipts,
        left: proofs.left,
        keys: vec![BundleKey {
            key: key.public_text().into(),
            created_at: None,
            retired_at: None,
        }],
        checkpoints: notes
            .into_iter()
            .zip(proofs.consistency)
            .map(|((_, note), consistency)| BundleCheckpoint { note, consistency })
            .collect(),
        exported_at: Utc::now(),
    };
    let checkpoints = header.checkpoints.len();
    {
        let mut out = BufWriter::with_capacity(1 << 20, file.reopen()?);
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
        // The clone that wrote it shares the file's position.
        let mut body_file = body_file;
        body_file.seek(SeekFrom::Start(0))?;
        let mut body_reader = BufReader::new(body_file);
        let mut line = String::new();
        for index in 0..opts.receipts {
            line.clear();
            body_reader.read_line(&mut line)?;
            let leaf = portcullis_engine::evidence::stored_hash_index(0, index) as usize;
            let receipt = RawValue::from_string(line.trim_end().to_owned())?;
            serde_json::to_writer(
                &mut out,
                &BundleLine {
                    index,
                    tree_hash: stored.0[leaf].into(),
                    receipt: Some(receipt),
                },
            )?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    drop(stored);
    let bundle_bytes = std::fs::metadata(file.path())?.len();
    let build_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, file.reopen()?);
    let mut line = String::new();
    let mut parsed = 0u64;
    reader.read_line(&mut line)?;
    let _: BundleHeader = serde_json::from_str(&line)?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let l: BundleLine = serde_json::from_str(line.trim_end())?;
        parsed += u64::from(l.receipt.is_some());
    }
    let parse_secs = started.elapsed().as_secs_f64();
    if parsed != opts.receipts {
        bail!("parsed {parsed} receipts, expected {}", opts.receipts);
    }

    let started = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, file.reopen()?);
    let report = check_bundle(&mut reader, None, None)?;
    let verify_secs = started.elapsed().as_secs_f64();
    if !report.is_ok() || report.receipts != opts.receipts {
        bail!("the bundle did not verify: {:?}", report.findings);
    }
    Ok(EvidenceBenchReport {
        receipts: opts.receipts,
        checkpoints,
        bundle_bytes,
        build_secs,
        parse_secs,
        verify_secs,
    })
}
