//! `portcullis evidence export`.

use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use portcullis_engine::TenantId;
use sqlx::PgPool;

use crate::config::Config;
use crate::evidence::export_bundle;

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long)]
    tenant: String,
    /// First receipt time to include (RFC 3339); the log's start if absent.
    #[arg(long, value_parser = super::parse_time)]
    from: Option<DateTime<Utc>>,
    /// Last receipt time to include (RFC 3339); the last checkpoint if absent.
    #[arg(long, value_parser = super::parse_time)]
    to: Option<DateTime<Utc>>,
    /// Where to write the bundle; `<tenant>.bundle` if absent.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

pub async fn export(config: &Config, pool: &PgPool, args: ExportArgs) -> anyhow::Result<()> {
    TenantId::parse(&args.tenant)?;
    let path = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}.bundle", args.tenant)));
    // Written beside the target, then renamed: a bundle file is always whole.
    let partial = path.with_extension("partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} receipts ({per_sec}, {eta} left)")
            .expect("template"),
    );
    let done = export_bundle(
        pool,
        &config.evidence.origin,
        &args.tenant,
        args.from,
        args.to,
        &mut out,
        |written, total| {
            bar.set_length(total);
            bar.set_position(written);
        },
    )
    .await;
    bar.finish_and_clear();
    drop(out);
    let done = match done {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    std::fs::rename(&partial, &path)
        .with_context(|| format!("cannot move the bundle to {}", path.display()))?;
    println!(
        "wrote {}: {} receipts of {} (indexes {} to {}), {} checkpoints",
        path.display(),
        done.lines,
        args.tenant,
        done.first,
        done.end - 1,
        done.checkpoints
    );
    if done.unsealed > 0 {
        println!(
            "{} later receipts in the range await their checkpoint and are not in the bundle; export again in a few seconds to include them",
            done.unsealed
        );
    }
    println!("check it with: portcullis verify {}", path.display());
    Ok(())
}
