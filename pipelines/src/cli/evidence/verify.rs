//! `portcullis verify BUNDLE`: checks a bundle offline and names what is wrong.

use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use portcullis_engine::evidence::Report;

use crate::evidence::check_bundle;

/// Findings printed before the rest are only counted.
const SHOWN: usize = 50;
/// Longest the search for what changed may take; past it, a coarser account is given.
const DIFF_BUDGET: Duration = Duration::from_secs(60);

#[derive(Args)]
pub struct VerifyArgs {
    /// The bundle (`portcullis evidence export`); `-` reads standard input.
    bundle: PathBuf,
    /// Trust only this public key (`<name>+<id>+<base64>`, or a file holding it), not the
    /// keys the bundle carries. Repeatable. Without it the check proves the bundle is
    /// consistent with the keys inside it; with it, that the log's owner signed it.
    #[arg(long = "key", value_name = "KEY")]
    keys: Vec<String>,
    /// Print no progress.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Checks the bundle; prints the report. An error when the bundle does not verify.
pub fn verify_bundle(args: &VerifyArgs) -> anyhow::Result<()> {
    let report = check(args)?;
    let ok = report.is_ok();
    print_report(&report);
    if !ok {
        anyhow::bail!(
            "the bundle does not verify: {} problem(s)",
            report.findings.len()
        );
    }
    Ok(())
}

fn check(args: &VerifyArgs) -> anyhow::Result<Report> {
    let (input, size): (Box<dyn Read>, u64) = if args.bundle.as_os_str() == "-" {
        (Box::new(std::io::stdin()), 0)
    } else {
        let file = std::fs::File::open(&args.bundle)
            .with_context(|| format!("cannot open {}", args.bundle.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(file), size)
    };
    let bar = if args.quiet || size == 0 {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} ({eta} left)")
                .expect("template"),
        )
    };
    let mut reader = BufReader::with_capacity(1 << 20, bar.wrap_read(input));
    let trusted = args
        .keys
        .iter()
        .map(|k| key_text(k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = check_bundle(
        &mut reader,
        (!trusted.is_empty()).then_some(&trusted[..]),
        Some(DIFF_BUDGET),
    )?;
    bar.finish_and_clear();
    Ok(report)
}

/// A key given on the command line: the text itself, or a file holding it.
fn key_text(arg: &str) -> anyhow::Result<String> {
    if arg.contains('+') {
        return Ok(arg.trim().to_owned());
    }
    let text = std::fs::read_to_string(arg)
        .with_context(|| format!("--key {arg} is neither a public key nor a readable file"))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .with_context(|| format!("{arg} holds no key"))
}

fn print_report(r: &Report) {
    println!(
        "tenant {}: {} receipts (indexes {} to {}), {} signed checkpoints",
        r.tenant,
        r.receipts,
        r.first,
        r.end.saturating_sub(1),
        r.checkpoints
    );
    if r.is_ok() {
        println!(
            "OK: every receipt is the one the log signed, and the checkpoints form one append-only history (roots matched at sizes {})",
            r.matched
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return;
    }
    for f in r.findings.iter().take(SHOWN) {
        println!("FAIL: {f}");
    }
    if r.findings.len() > SHOWN {
        println!("… and {} more", r.findings.len() - SHOWN);
    }
}
