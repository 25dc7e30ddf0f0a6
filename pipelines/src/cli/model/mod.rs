//! `portcullis model`: anomaly models. `train` runs a tenant's training sessions (as the API
//! does, on Postgres directly), `list` shows model versions, `anomalies`, `trust` and
//! `settings` what the models found and how, and `eval` measures the Isolation Forest on
//! labelled data, so that its accuracy can be checked against another implementation or on an
//! analyst's own data.

mod findings;
mod labelled_csv;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use portcullis_engine::anomaly::{
    precision_at_k, roc_auc, ForestParams, IsolationForest, ModelScope,
};
use portcullis_engine::TenantId;

use crate::anomaly::{
    active_session, close_session, list_models, list_sessions, start_session, stop_session,
    SessionRow,
};
use crate::config::Config;
use crate::records::TenantScope;
use crate::sinks::postgres;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Training sessions: while one is active for a tenant and scope, the features of its
    /// events are collected; stopping it trains the next model version from them, which scores
    /// every later event (docs/anomaly-models.md).
    ///
    ///   portcullis model train start --tenant acme --scope cloudtrail
    ///   portcullis model train status --tenant acme --scope cloudtrail
    ///   portcullis model train stop --tenant acme --scope cloudtrail
    ///
    /// At most one session is active per tenant and scope (the database enforces it, across
    /// restarts and engines). `close` ends one without training.
    #[command(subcommand, verbatim_doc_comment)]
    Train(TrainCommand),
    /// Training sessions, newest first.
    Sessions {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Model versions, newest first: what each was trained on and how its rows scored.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Anomalies, newest first: events scored at or above their line's threshold, with the
    /// features that made them unusual and the decision they got.
    ///
    ///   portcullis model anomalies --tenant acme --since 2026-12-01T00:00:00Z
    #[command(verbatim_doc_comment)]
    Anomalies(findings::AnomaliesArgs),
    /// Trust now (0–100) of the principals and agents that lost some, least trusted first.
    /// One not listed has full trust (100). Levels: trusted 80–100, watch 50–79, low 20–49,
    /// untrusted 0–19.
    ///
    ///   portcullis model trust --tenant acme --kind principal
    #[command(verbatim_doc_comment)]
    Trust(findings::TrustArgs),
    /// Show each model line's settings, or change one line's: the score from which an event
    /// is an anomaly (default 0.7) and the half-life of lost trust (default 3600 s). The
    /// engine picks a change up at once.
    ///
    ///   portcullis model settings --tenant acme
    ///   portcullis model settings --tenant acme --scope cloudtrail --threshold 0.75
    #[command(verbatim_doc_comment)]
    Settings(findings::SettingsArgs),
    /// Train the Isolation Forest on a CSV of numeric features and score the same rows against
    /// a 0/1 label column (1 = anomaly): prints the ROC AUC and the precision among the top-k
    /// scores, k being the number of labelled anomalies.
    ///
    /// The label is never shown to the model: training is unsupervised, as it is on live
    /// events. With --seeds K, K forests are grown (seeds N, N+1, …) and the last lines give
    /// the mean and spread.
    ///
    ///   portcullis model eval --csv breast_cancer.csv --label malignant --seeds 10
    #[command(verbatim_doc_comment)]
    Eval(EvalArgs),
}

#[derive(Subcommand)]
pub enum TrainCommand {
    /// Start collecting: refused if a session is already active for the tenant and scope.
    Start(Target),
    /// The active session: when it started and how many events it has collected.
    Status(Target),
    /// Stop the active session and train the next model version from what it collected.
    Stop(Target),
    /// End the active session without training (its rows are kept).
    Close(Target),
}

#[derive(Args)]
pub struct Target {
    #[arg(long)]
    tenant: String,
    /// cloudtrail (records from Kafka) or device (agent events over MQTT).
    #[arg(long)]
    scope: String,
}

impl Target {
    fn parse(&self) -> anyhow::Result<(TenantId, ModelScope)> {
        Ok((
            TenantId::parse(&self.tenant)?,
            ModelScope::parse(&self.scope)?,
        ))
    }
}

#[derive(Args)]
pub struct EvalArgs {
    /// A CSV file with a header row; every column but the label (and --exclude) is a feature.
    #[arg(long, value_name = "FILE")]
    csv: PathBuf,
    /// The label column: 1 for an anomaly, 0 for a normal row.
    #[arg(long, value_name = "COLUMN")]
    label: String,
    /// A column to leave out, such as an id (repeatable).
    #[arg(long, value_name = "COLUMN")]
    exclude: Vec<String>,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How many forests to grow, on consecutive seeds.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    seeds: u64,
    /// Trees per forest.
    #[arg(long, default_value_t = 100)]
    trees: usize,
    /// Rows drawn for each tree (ψ).
    #[arg(long, default_value_t = 256)]
    sample_size: usize,
    /// Write the first forest's score of every row here, as CSV (row, score, label).
    #[arg(long, value_name = "FILE")]
    scores: Option<PathBuf>,
}

pub async fn run(config: &Config, cmd: ModelCommand) -> anyhow::Result<()> {
    // Needs no database.
    if let ModelCommand::Eval(args) = &cmd {
        return eval(args);
    }
    let target = match &cmd {
        ModelCommand::Train(
            TrainCommand::Start(t)
            | TrainCommand::Status(t)
            | TrainCommand::Stop(t)
            | TrainCommand::Close(t),
        ) => Some(t.parse()?),
        _ => None,
    };
    let pool = postgres::migrate(&config.postgres)
        .await
        .context("cannot open Postgres")?;
    let by = crate::cli::cli_user();
    match cmd {
        ModelCommand::Eval(_) => unreachable!("answered above"),
        ModelCommand::Anomalies(args) => findings::anomalies(&pool, args).await?,
        ModelCommand::Trust(args) => findings::trust(&pool, args).await?,
        ModelCommand::Settings(args) => findings::settings(&pool, args, &by).await?,
        ModelCommand::Train(command) => {
            let (tenant, scope) = target.expect("parsed above");
            match command {
                TrainCommand::Start(_) => {
                    let s = start_session(&pool, &tenant, scope, &by).await?;
                    println!(
                        "started training session {} for {tenant}/{scope}",
                        s.session_id
                    );
                    println!("stop it with `portcullis model train stop`; what it collects: docs/anomaly-models.md");
                }
                TrainCommand::Status(_) => match active_session(&pool, &tenant, scope).await? {
                    Some(s) => print_session(&s),
                    None => println!("no training session is active for {tenant}/{scope}"),
                },
                TrainCommand::Stop(_) => {
                    let done =
                        stop_session(&pool, &tenant, scope, ForestParams::default(), &by).await?;
                    print_session(&done.session);
                    match done.model {
                        Some(m) => println!(
                            "trained {tenant}/{scope} model version {} on {} rows",
                            m.version, m.summary["rows"]
                        ),
                        None => anyhow::bail!(
                            "no model was trained: {}",
                            done.session.failure.unwrap_or_default()
                        ),
                    }
                }
                TrainCommand::Close(_) => {
                    let s = close_session(&pool, &tenant, scope, &by).await?;
                    println!("closed training session {} without training", s.session_id);
                }
            }
        }
        ModelCommand::Sessions { tenant, limit } => {
            let rows = list_sessions(&pool, &tenant_scope(tenant)?, limit).await?;
            if rows.is_empty() {
                println!("no training sessions (portcullis model train start)");
            }
            for s in &rows {
                print_session(s);
            }
        }
        ModelCommand::List { tenant, limit } => {
            let rows = list_models(&pool, &tenant_scope(tenant)?, limit).await?;
            if rows.is_empty() {
                println!("no models yet (portcullis model train start, then stop)");
            }
            for m in &rows {
                println!(
                    "{}/{} v{}  trained {} by {}  rows {}  score p50 {} p99 {}  session {}",
                    m.tenant_id,
                    m.scope,
                    m.version,
                    m.trained_at.format("%Y-%m-%d %H:%M:%S"),
                    m.trained_by,
                    m.summary["rows"],
                    m.summary["score_p50"],
                    m.summary["score_p99"],
                    m.session_id
                );
            }
        }
    }
    Ok(())
}

fn tenant_scope(tenant: Option<String>) -> anyhow::Result<TenantScope> {
    Ok(match tenant {
        Some(t) => TenantScope::Only(vec![TenantId::parse(&t)?]),
        None => TenantScope::All,
    })
}

fn print_session(s: &SessionRow) {
    let ended = match (&s.ended_at, &s.ended_by) {
        (Some(at), Some(by)) => format!("  ended {} by {by}", at.format("%Y-%m-%d %H:%M:%S")),
        _ => String::new(),
    };
    let outcome = match (s.model_version, &s.failure) {
        (Some(v), _) => format!("  model v{v}"),
        (None, Some(f)) => format!("  failure: {f}"),
        _ => String::new(),
    };
    println!(
        "{}  {}/{}  {}  rows {}  started {} by {}{ended}{outcome}",
        s.session_id,
        s.tenant_id,
        s.scope,
        s.state,
        s.rows_collected,
        s.started_at.format("%Y-%m-%d %H:%M:%S"),
        s.started_by
    );
}

fn eval(args: &EvalArgs) -> anyhow::Result<()> {
    let data = labelled_csv::read(&args.csv, &args.label, &args.exclude)?;
    let rows = data.matrix.rows();
    let anomalies = data.labels.iter().filter(|l| **l).count();
    println!(
        "rows {rows}  features {}  anomalies {anomalies} (label {} = 1)",
        data.features.len(),
        args.label
    );
    let Some(last) = args.seed.checked_add(args.seeds) else {
        anyhow::bail!(
            "--seed {} plus --seeds {} is past the largest seed",
            args.seed,
            args.seeds
        );
    };
    let mut aucs = Vec::new();
    let mut precisions = Vec::new();
    for seed in args.seed..last {
        let params = ForestParams {
            trees: args.trees,
            sample_size: args.sample_size,
            seed,
        };
        let started = Instant::now();
        let forest = IsolationForest::fit(params, &data.matrix)?;
        let trained = started.elapsed();
        let started = Instant::now();
        let scores = forest.score_all(&data.matrix)?;
        let scored = started.elapsed();
        let auc = roc_auc(&data.labels, &scores)?;
        let precision = precision_at_k(&data.labels, &scores, anomalies)?;
        println!(
            "seed {seed}  auc {auc:.4}  precision_at_k {precision:.4}  train_ms {:.2}  score_ms {:.2}",
            trained.as_secs_f64() * 1e3,
            scored.as_secs_f64() * 1e3
        );
        if seed == args.seed {
            if let Some(path) = &args.scores {
                write_scores(path, &scores, &data.labels)?;
            }
        }
        aucs.push(auc);
        precisions.push(precision);
    }
    let (auc, spread) = mean_and_sd(&aucs);
    println!("auc {auc:.4}");
    if aucs.len() > 1 {
        println!("auc_sd {spread:.4}");
    }
    println!(
        "precision_at_k {:.4}  (k = {anomalies}, the labelled anomalies)",
        mean_and_sd(&precisions).0
    );
    Ok(())
}

fn mean_and_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn write_scores(path: &Path, scores: &[f64], labels: &[bool]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "row,score,label")?;
    for (i, (score, label)) in scores.iter().zip(labels).enumerate() {
        writeln!(out, "{i},{score},{}", u8::from(*label))?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}
