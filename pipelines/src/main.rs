//! The `portcullis` command.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use portcullis::cli::agent::{self, AgentCommand};
use portcullis::cli::approval::{self, ApprovalCommand};
use portcullis::cli::broker::{self, BrokerCommand};
use portcullis::cli::compliance::{self, ComplianceCommand};
use portcullis::cli::dlq;
use portcullis::cli::evidence::{self, EvidenceCommand, VerifyArgs};
use portcullis::cli::gateway::{self, GatewayCommand};
use portcullis::cli::model::{self, ModelCommand};
use portcullis::cli::protection::{self, ProtectionCommand};
use portcullis::cli::segment::{self, SegmentCommand, SigningKeyCommand};
use portcullis::cli::signal::{self, SignalCommand};
use portcullis::cli::token::{self, TokenCommand};
use portcullis::config::{Config, TelemetryConfig};
use portcullis::path::Replayed;
use portcullis::sinks::postgres;
use portcullis::sinks::postgres::{DeadLetterFilter, DeadLetterRow};
use portcullis::telemetry::stats::Stats;
use portcullis::tools::bench::{
    run_engine_bench, run_evidence_bench, run_fanout_bench, run_forest_bench, run_pipeline_bench,
    run_policy_bench, run_scan_bench, run_sessions_bench, BenchOptions, EngineBenchOptions,
    EvidenceBenchOptions, FanoutOptions, ForestBenchOptions, PolicyBenchOptions, ScanBenchOptions,
    SessionsOptions,
};
use portcullis::tools::demo::{run_demo, DemoOptions};
use portcullis::tools::services;
use portcullis::{runtime, telemetry};
use portcullis_engine::TenantId;
use tokio_util::sync::CancellationToken;

// The hot path allocates and frees many small JSON and Rego values per event; under glibc's
// allocator that was a third of the engine's CPU (perf, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Real-time security policy enforcement: CloudTrail over Kafka and agent events over MQTT are
/// judged by per-tenant Rego policies, and events, decisions and dead letters land in Postgres.
///
/// Every setting has a default that works on loopback. Settings come from (later wins): built-in
/// defaults, `portcullis.toml` in the working directory or the file given with --config, and
/// environment variables named PORTCULLIS_<SECTION>__<KEY>, e.g. PORTCULLIS_KAFKA__BROKERS.
#[derive(Parser)]
#[command(name = "portcullis", version, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Default: ./portcullis.toml if it exists.
    #[arg(
        long,
        short,
        global = true,
        env = "PORTCULLIS_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine: consume Kafka and MQTT, judge every event, write rows to Postgres.
    ///
    /// Applies pending migrations first. Stops cleanly on Ctrl-C or SIGTERM: the batch in hand is
    /// committed (or left to be redelivered), offsets and acks are sent, then it exits 0.
    Run,
    /// Create the database if needed and apply the schema migrations. Safe to repeat.
    Migrate,
    /// Start everything and drive a realistic CloudTrail + agent stream through it.
    ///
    /// Starts local services if they do not answer (scripts/services up), migrates, registers the
    /// demo tenants (acme, globex, initech), runs the engine in this process, sends the traffic
    /// through Kafka and MQTT, and prints a summary. The rows stay in Postgres for you to query.
    Demo(DemoArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage tenants and the AWS accounts mapped to them.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Make, list and revoke the bearer tokens the HTTP API and the console accept.
    ///
    /// A first admin token: `portcullis token create --name me --scope admin`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Inspect dead letters and re-drive them after fixing their cause.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Segment policy for edge agents: publish versions, see their history, map groups to
    /// segments (docs/agent-protocol.md).
    #[command(subcommand)]
    Segment(SegmentCommand),
    /// The key segment policy is signed with, and the public key agents trust.
    #[command(subcommand)]
    SigningKey(SigningKeyCommand),
    /// The reference edge agent: segment policy kept on disk, applied in order, enforced
    /// locally (`portcullis agent run --help`).
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Prepare the MQTT broker for enrolled agents (`portcullis broker setup --help`).
    #[command(subcommand)]
    Broker(BrokerCommand),
    /// Anomaly models: training sessions, model versions, and the Isolation Forest measured on
    /// labelled data (`model train --help`, `model eval --help`).
    #[command(subcommand)]
    Model(ModelCommand),
    /// Receipt logs: export a tenant's receipts as a bundle, see keys and checkpoints, rotate
    /// the key (docs/evidence.md).
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Check an evidence bundle offline: every receipt against the signed checkpoints, the
    /// checkpoints against each other. Names each receipt edited, deleted, inserted or
    /// reordered, and each forked or rolled-back checkpoint, bad signature or unknown key.
    /// Exit status 0 when it verifies, 1 when it does not.
    ///
    ///   portcullis verify acme.bundle --key 'portcullis.local+1a2b3c4d+AY…'
    #[command(verbatim_doc_comment)]
    Verify(VerifyArgs),
    /// The approval queue: requests a rule answered `require_approval` for, and their answers
    /// (docs/approvals.md).
    #[command(subcommand)]
    Approval(ApprovalCommand),
    /// Compliance: the packs tenants enable, their tests, and the violations their controls
    /// open, worked through their lifecycle (docs/compliance.md).
    #[command(subcommand)]
    Compliance(ComplianceCommand),
    /// Protection levels: units whose load (rho = arrivals / capacity) tightens policy as it
    /// rises, and their changes of level (docs/protection.md).
    #[command(subcommand)]
    Protection(ProtectionCommand),
    /// External trust signals: what other security tools say about a principal or an agent,
    /// lowering its trust while it lasts (docs/signals.md).
    #[command(subcommand)]
    Signal(SignalCommand),
    /// Put a web site behind a tenant's policy: print the nginx or Traefik configuration that
    /// asks the engine's forward-auth gateway about every request (docs/gateway.md).
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Measure throughput and latency on this machine's real services.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Segment policy fan-out: N simulated agents, each with its own MQTT connection, one
    /// segment update, the time until every agent has verified and applied it.
    ///
    /// In one run, on the same connections: the ceiling (an envelope of the same size published
    /// straight to the broker) and the engine (a version published in Postgres and sent by the
    /// segment actor). Prints p50, p99 and the last agent for both. Uses `{database}_bench` and
    /// a signing key of its own. Raise the open-file limit for large N (each agent is a socket
    /// here and in the broker).
    Fanout {
        /// Simulated agents.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        agents: u64,
        /// Connections opened at once while ramping up.
        #[arg(long, default_value_t = 250)]
        connect_batch: usize,
        /// Seconds to wait for every agent to apply the update.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// The engine's memory per agent session: resident memory with N agents' sessions live
    /// and idle, and after they passivate.
    ///
    /// N agents say hello (one MQTT client publishing on each agent's own topic: a session
    /// belongs to an agent, not a connection) and stay idle: growth over the baseline, per
    /// agent, bounds a live session. They passivate, then N more say hello and passivate:
    /// growth between those two readings, per agent, is what a passivated session keeps.
    /// Uses `{database}_bench`. Run it on a release build for figures that count.
    Sessions {
        /// Agents (sessions) per round.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        agents: u64,
        /// How long a session stays live without messages (actors.agent_session.idle_secs)
        /// in this run: longer than the hellos take, or the first passivate before the last
        /// are measured.
        #[arg(long, default_value_t = 60)]
        idle_secs: u64,
    },
    /// The engine's own throughput into Postgres, without the broker, against a COPY ceiling.
    ///
    /// Generates CloudTrail messages in memory and, in one run: decodes them and COPYs their
    /// events straight into Postgres (the ceiling: no actors, no policy, no decisions, no
    /// idempotence); then feeds the same messages through the engine's staged event path
    /// (decode, tenant actors and Rego, events and decisions written idempotently) with
    /// anomaly models off; then with a training session for every tenant (features collected),
    /// and, once the sessions have trained a model, with every event scored. Prints events/s
    /// for each, the ratios, and the CPU time per event of the engine and of Postgres. Uses a separate database, `{database}_bench`. Needs the demo tenants' bundles
    /// (policy.bundles_dir). Run it on a release build: `cargo run --release -- bench engine`.
    Engine {
        /// CloudTrail records to generate (about 2.5 per message: single records and log files).
        #[arg(long, default_value_t = 500_000, value_parser = clap::value_parser!(u64).range(1..))]
        events: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// The pipeline end to end against its ceiling (Kafka → COPY, no actors, no policy), in one run.
    ///
    /// Uses a separate database, `{database}_bench`, and a fresh topic; your data is untouched.
    /// Prints records/s for both, their ratio, and produce→commit latency p50/p99 at half the
    /// measured pipeline rate. Run it on a release build: `cargo run --release -- bench pipeline`.
    Pipeline {
        /// CloudTrail records to push through.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Partitions of the benchmark topic.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// Seconds of paced traffic for the latency measurement.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        latency_secs: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// In-process decision latency: seed 001's ABAC policy, compliance packs on and off, and
    /// the 15-rule CloudTrail example.
    ///
    /// Times single evaluations (p50/p99/p999): the ABAC rule as the decision API evaluates it,
    /// directly and through the tenant actor; acme's bundle on realistic CloudTrail events with
    /// the compliance packs it enables and without them (what the packs cost an event); the CIS
    /// CloudTrail example (policies/examples/) as the stream evaluates it, then grown to more
    /// rules to show how cost follows the rule count. Needs no services. Run it on a release build:
    /// `cargo run --release -- bench policy`. HTTP figures: `scripts/bench-http`.
    Policy {
        /// Evaluations timed per case (after as many again to warm up).
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
        iterations: u64,
        /// Total rule counts for the grown pack, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "60,240")]
        grown: Vec<usize>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// A compliance scan of a tenant with N stored findings (each one event a control fired
    /// on), against reading the same rows with one aggregate, in one run. Uses
    /// `{database}_bench`; prints the median of the rounds.
    Scan {
        /// Findings stored for the tenant.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
        findings: u64,
        /// Resources with violations (each has one of each of the CIS pack's 15 controls).
        #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        resources: u64,
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
        rounds: u64,
    },
    /// `portcullis verify` on one core: receipts checked per second on a bundle of N receipts,
    /// against reading and parsing the same file alone, in one run.
    ///
    /// Builds a tenant's log of N engine-shaped receipts in memory with a checkpoint every K,
    /// writes the bundle as `evidence export` does (to a temporary file), then reads it twice.
    /// Needs no services. Run it on a release build: `cargo run --release -- bench evidence`.
    Evidence {
        /// Receipts in the bundle.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        receipts: u64,
        /// A checkpoint every this many receipts (and one at the end).
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        checkpoint_every: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// The Isolation Forest on one core: training time and scoring throughput.
    ///
    /// Grows forests with the paper's defaults (100 trees, subsample 256) on synthetic rows and
    /// prints the median and slowest training time; then scores every row, a block at a time
    /// as the engine does and one row at a time, and prints rows/s for both. Needs no services.
    /// Run it on a release build: `cargo run --release -- bench forest`. Accuracy against
    /// scikit-learn: scripts/compare-isolation-forest.
    Forest {
        /// Rows of synthetic data.
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(2..=10_000_000))]
        rows: u64,
        /// Features per row.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
        features: u64,
        /// Forests grown to time training.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
        fits: u64,
        /// Passes over the rows to time scoring.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
        passes: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List dead letters, least-replayed then oldest first (unresolved ones unless --all).
    List(DlqSelect),
    /// Re-drive dead letters through decoding, policy and storage.
    ///
    /// Use it after fixing what the reason says: map the account (`tenant add --account`),
    /// register the tenant, repair its bundle. A dead letter that now goes through is stored and
    /// marked resolved in one transaction; one that still fails keeps its original reason, and the
    /// replay's error is recorded beside it (`last_replay_error`).
    /// Replaying is idempotent: events already stored are not stored twice.
    Replay {
        #[command(flatten)]
        select: DlqSelect,
        /// Only list what would be replayed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args)]
struct DlqSelect {
    /// Only this dead letter (repeatable).
    #[arg(long = "id", value_name = "DEAD_LETTER_ID")]
    ids: Vec<String>,
    /// Only dead letters from this source.
    #[arg(long, value_parser = ["kafka", "mqtt"])]
    source: Option<String>,
    /// Only dead letters of this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Only dead letters whose reason (or latest replay error) contains this text, e.g. "not mapped".
    #[arg(long, value_name = "TEXT")]
    reason_contains: Option<String>,
    /// Include dead letters already resolved by a replay.
    #[arg(long)]
    all: bool,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

impl DlqSelect {
    fn filter(self) -> DeadLetterFilter {
        DeadLetterFilter {
            ids: self.ids,
            source: self.source,
            tenant: self.tenant,
            reason_contains: self.reason_contains,
            include_resolved: self.all,
            limit: self.limit.max(0),
        }
    }
}

#[derive(Args)]
struct DemoArgs {
    /// CloudTrail records to send through Kafka.
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Agent events to publish over MQTT.
    #[arg(long, default_value_t = 2_000)]
    device_events: u64,
    /// Do not try to start local services; fail if they are down.
    #[arg(long)]
    no_services: bool,
    /// Seconds to wait for the engine to commit everything.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Seed of the traffic generator (same seed, same traffic shape).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Exit after the summary, instead of keeping the engine running with a gentle stream for
    /// the console until Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// Simulated edge agents (the reference agent, each with its own MQTT connection) in
    /// several groups: segment updates are published while a third of them are offline, and
    /// the summary shows whether every one converged on every segment's latest version.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(0..=500))]
    agents: u64,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective settings as TOML.
    Check {
        /// Also check that Postgres, Kafka and MQTT answer on their configured addresses.
        #[arg(long)]
        connect: bool,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Register a tenant (idempotent) and map AWS accounts to it.
    ///
    /// Example: portcullis tenant add acme --name "Acme Corp" --account 111111111111
    Add {
        /// Tenant id: a lower-case letter, then up to 62 of a-z, 0-9, _.
        id: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// AWS account id (12 digits) whose CloudTrail records belong to this tenant. Repeatable.
        #[arg(long = "account", value_name = "ACCOUNT_ID")]
        accounts: Vec<String>,
    },
    /// List tenants and their accounts.
    List,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match dispatch(cli.command, config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// CPU cores this process may use, as benchmark reports state them.
fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0)
}

/// The telemetry settings of a command that prints progress or a report: warnings only, unless
/// a log filter was asked for (`RUST_LOG` or `telemetry.log`).
fn quiet(telemetry: &TelemetryConfig) -> TelemetryConfig {
    let mut quiet = telemetry.clone();
    if std::env::var_os("RUST_LOG").is_none() && quiet.log == TelemetryConfig::default().log {
        quiet.log = "warn".into();
    }
    quiet
}

fn dispatch(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Config(ConfigCommand::Check { connect }) => config_check(&config, connect),
        Command::Migrate => {
            runtime::block_on(async {
                // Inside the runtime: the OTLP exporter needs one to exist when it is built.
                let _t = telemetry::init(&config.telemetry)?;
                let pool = postgres::migrate(&config.postgres).await.with_context(|| {
                    format!("cannot migrate {}", runtime::redact(&config.postgres.url))
                })?;
                let applied = postgres::MIGRATOR.iter().count();
                pool.close().await;
                println!(
                    "schema up to date ({applied} migrations) at {}",
                    runtime::redact(&config.postgres.url)
                );
                Ok(())
            })
        }
        Command::Run => {
            runtime::block_on(async {
                // Inside the runtime: the OTLP exporter needs one to exist when it is built.
                let _t = telemetry::init(&config.telemetry)?;
                let cancel = CancellationToken::new();
                tokio::spawn(stop_on_signal(cancel.clone()));
                runtime::run(config, Arc::new(Stats::default()), cancel).await
            })
        }
        Command::Demo(args) => {
            let tcfg = quiet(&config.telemetry);

            let keep_running = !args.exit;
            let opts = DemoOptions {
                cloudtrail_records: args.events,
                device_events: args.device_events,
                start_services: !args.no_services,
                timeout: Duration::from_secs(args.timeout),
                seed: args.seed,
                keep_running,
                stop: CancellationToken::new(),
                edge_agents: args.agents as usize,
            };
            // The built-in URL's password is a documented development default: show it whole so
            // the hint can be pasted. Any other URL keeps its password hidden.
            let url = if config.postgres.url == Config::default().postgres.url {
                config.postgres.url.clone()
            } else {
                runtime::redact(&config.postgres.url)
            };
            runtime::block_on(async {
                let _t = telemetry::init(&tcfg)?;
                run_demo(config, opts, |s| print_demo_summary(s, &url, keep_running)).await
            })?;
            Ok(())
        }
        Command::Bench(BenchCommand::Fanout {
            agents,
            connect_batch,
            timeout_secs,
        }) => {
            let tcfg = quiet(&config.telemetry);
            let opts = FanoutOptions {
                agents: agents as usize,
                connect_batch,
                timeout: Duration::from_secs(timeout_secs),
            };
            let r = runtime::block_on(async {
                let _t = telemetry::init(&tcfg)?;
                run_fanout_bench(&config, &opts).await
            })?;
            println!(
                "fan-out benchmark: {} agents, one segment update of {} bytes, {} cores (connected in {:.1} s)",
                r.agents,
                r.payload_bytes,
                cores(),
                r.connect_secs
            );
            for (name, s) in [
                ("ceiling: broker only", &r.ceiling),
                ("engine: publish → applied", &r.engine),
            ] {
                println!(
                    "  {name:<26} applied {:>6}/{}  p50 {:>7.1} ms  p99 {:>7.1} ms  last {:>7.1} ms",
                    s.applied, r.agents, s.p50_ms, s.p99_ms, s.max_ms
                );
            }
            if r.engine.applied < r.agents || r.ceiling.applied < r.agents {
                anyhow::bail!("not every agent applied the update");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Sessions { agents, idle_secs }) => {
            let tcfg = quiet(&config.telemetry);
            let opts = SessionsOptions {
                agents: agents as usize,
                idle_secs,
            };
            let r = runtime::block_on(async {
                let _t = telemetry::init(&tcfg)?;
                run_sessions_bench(&config, &opts).await
            })?;
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            println!(
                "agent sessions benchmark: {} agents per round, {} cores (hellos handled in {:.1} s)",
                r.agents,
                cores(),
                r.hello_secs
            );
            println!(
                "  resident memory: {:.1} MiB baseline, {:.1} MiB with all live and idle, {:.1} MiB after they passivated, {:.1} MiB after {} more passivated",
                mib(r.baseline_rss),
                mib(r.live_rss),
                mib(r.passivated_rss),
                mib(r.passivated_twice_rss),
                r.agents
            );
            println!(
                "  per live idle session   {:>8.0} bytes at most (target 4096)",
                r.per_live_session()
            );
            println!(
                "  per passivated session  {:>8.0} bytes",
                r.per_passivated_session()
            );
            Ok(())
        }
        Command::Bench(BenchCommand::Policy {
            iterations,
            grown,
            seed,
        }) => {
            let opts = PolicyBenchOptions {
                iterations: iterations as usize,
                grown,
                seed,
            };
            let cases = runtime::block_on(run_policy_bench(&config, &opts))?;
            let cores = cores();
            println!("policy benchmark: single evaluations, {cores} cores");
            println!("{}", portcullis::tools::bench::POLICY_HEADER);
            for c in cases {
                println!("{c}");
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Forest {
            rows,
            features,
            fits,
            passes,
            seed,
        }) => {
            let report = run_forest_bench(&ForestBenchOptions {
                rows: rows as usize,
                features: features as usize,
                fits: fits as usize,
                passes: passes as usize,
                seed,
            })?;
            print!("{report}");
            Ok(())
        }
        Command::Bench(BenchCommand::Engine { events, seed }) => {
            let tcfg = quiet(&config.telemetry);
            let opts = EngineBenchOptions {
                records: events,
                seed,
            };
            let r = runtime::block_on(async {
                let _t = telemetry::init(&tcfg)?;
                run_engine_bench(&config, &opts).await
            })?;
            let cores = cores();
            println!(
                "engine benchmark: {} CloudTrail records in {} messages, batches of {} messages, {} in flight, {cores} cores",
                r.records, r.messages, r.batch_messages, r.in_flight
            );
            println!("                              events/s    seconds   engine CPU/event   Postgres CPU/event");
            for (name, phase) in [
                ("ceiling: decode → COPY", &r.ceiling),
                ("no packs: the staged path", &r.no_packs),
                ("engine: + compliance packs", &r.engine),
                ("  + receipts", &r.receipts),
                ("  + collecting features", &r.collecting),
                ("  + scoring every event", &r.scoring),
            ] {
                println!(
                    "  {name:<26} {:>10.0} {:>10.2} {:>15.1} µs {:>17.1} µs",
                    r.rate(phase),
                    phase.secs,
                    r.per_event_us(phase.engine_cpu_secs),
                    r.per_event_us(phase.postgres_cpu_secs),
                );
            }
            println!(
                "  ratio engine / ceiling     {:>10.2}",
                r.rate(&r.engine) / r.rate(&r.ceiling)
            );
            println!(
                "  ratio packs / no packs     {:>10.2}   (compliance packs on against off; {} findings)",
                r.rate(&r.engine) / r.rate(&r.no_packs),
                r.findings
            );
            println!(
                "  ratio receipts / engine    {:>10.2}   (receipts on against off)",
                r.rate(&r.receipts) / r.rate(&r.engine)
            );
            println!(
                "  ratio scoring / receipts   {:>10.2}   (anomaly models on against off)",
                r.rate(&r.scoring) / r.rate(&r.receipts)
            );
            println!(
                "  scoring found {} anomalies (threshold {}) and lowered {} principals' trust",
                r.anomalies,
                portcullis_engine::anomaly::AnomalySettings::DEFAULT_THRESHOLD,
                r.distrusted
            );
            Ok(())
        }
        Command::Bench(BenchCommand::Scan {
            findings,
            resources,
            rounds,
        }) => {
            let tcfg = quiet(&config.telemetry);
            let r = runtime::block_on(async {
                let _t = telemetry::init(&tcfg)?;
                run_scan_bench(
                    &config,
                    &ScanBenchOptions {
                        findings,
                        resources,
                        rounds: rounds as usize,
                    },
                )
                .await
            })?;
            println!(
                "scan benchmark: {} findings over {} violations, median of {rounds} rounds, {} cores",
                r.findings,
                r.violations,
                cores()
            );
            println!(
                "  ceiling: count the period's findings      {:>8.3} s",
                r.ceiling.as_secs_f64()
            );
            println!(
                "  scan: 15 controls judged, stored          {:>8.3} s   ({:.0} findings/s; {} controls failed)",
                r.scan.as_secs_f64(),
                r.findings as f64 / r.scan.as_secs_f64(),
                r.failed_controls
            );
            println!(
                "  ratio scan / ceiling                      {:>8.2}",
                r.scan.as_secs_f64() / r.ceiling.as_secs_f64()
            );
            Ok(())
        }
        Command::Bench(BenchCommand::Evidence {
            receipts,
            checkpoint_every,
            seed,
        }) => {
            let r = run_evidence_bench(&EvidenceBenchOptions {
                receipts,
                checkpoint_every,
                seed,
            })?;
            println!(
                "evidence benchmark: a bundle of {} receipts and {} checkpoints, {:.1} MiB (built in {:.1} s), one core",
                r.receipts,
                r.checkpoints,
                r.bundle_bytes as f64 / (1024.0 * 1024.0),
                r.build_secs
            );
            println!(
                "  read + parse only        {:>10.0} receipts/s  {:>7.2} s",
                r.parse_rate(),
                r.parse_secs
            );
            println!(
                "  portcullis verify        {:>10.0} receipts/s  {:>7.2} s",
                r.verify_rate(),
                r.verify_secs
            );
            println!(
                "  ratio verify / parse     {:>10.2}",
                r.verify_rate() / r.parse_rate()
            );
            Ok(())
        }
        Command::Bench(BenchCommand::Pipeline {
            events,
            partitions,
            latency_secs,
            seed,
        }) => {
            let tcfg = quiet(&config.telemetry);
            let opts = BenchOptions {
                records: events,
                partitions,
                latency_secs,
                seed,
            };
            let r = runtime::block_on(async {
                let _t = telemetry::init(&tcfg)?;
                run_pipeline_bench(&config, &opts).await
            })?;
            let cores = cores();
            println!("pipeline benchmark: {} CloudTrail records in {} messages, {partitions} partitions, {cores} cores", r.records, r.messages);
            println!(
                "  produce to Kafka          {:>10.0} records/s  ({:.1} s)",
                r.records as f64 / r.produce_secs,
                r.produce_secs
            );
            println!(
                "  ceiling: Kafka → COPY     {:>10.0} records/s  ({:.1} s)",
                r.ceiling_rate(),
                r.ceiling_secs
            );
            println!(
                "  pipeline: end to end      {:>10.0} records/s  ({:.1} s)",
                r.pipeline_rate(),
                r.pipeline_secs
            );
            println!(
                "  ratio pipeline / ceiling  {:>10.2}",
                r.pipeline_rate() / r.ceiling_rate()
            );
            println!(
                "  produce→commit latency at {:.0} records/s ({} records): p50 {:.1} ms, p99 {:.1} ms",
                r.latency_rate, r.latency_events, r.latency_p50_ms, r.latency_p99_ms
            );
            Ok(())
        }
        Command::Token(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&config.telemetry)?;
            token::run(&config, cmd).await
        }),
        Command::Segment(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&config.telemetry)?;
            segment::run(&config, cmd).await
        }),
        Command::SigningKey(SigningKeyCommand::Show) => segment::show_signing_key(&config),
        Command::Agent(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&config.telemetry)?;
            let cancel = CancellationToken::new();
            tokio::spawn(stop_on_signal(cancel.clone()));
            agent::run(&config, cmd, cancel).await
        }),
        Command::Broker(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&config.telemetry)?;
            broker::run(&config, cmd).await
        }),
        Command::Evidence(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&quiet(&config.telemetry))?;
            evidence::run(&config, cmd).await
        }),
        Command::Approval(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&quiet(&config.telemetry))?;
            approval::run(&config, cmd).await
        }),
        Command::Compliance(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&quiet(&config.telemetry))?;
            compliance::run(&config, cmd).await
        }),
        Command::Protection(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&quiet(&config.telemetry))?;
            protection::run(&config, cmd).await
        }),
        Command::Signal(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&quiet(&config.telemetry))?;
            signal::run(&config, cmd).await
        }),
        Command::Gateway(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&quiet(&config.telemetry))?;
            gateway::run(&config, cmd).await
        }),
        // Offline: no services, no runtime.
        Command::Verify(args) => evidence::verify_bundle(&args),
        Command::Model(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&config.telemetry)?;
            model::run(&config, cmd).await
        }),
        Command::Dlq(cmd) => runtime::block_on(async {
            let _t = telemetry::init(&config.telemetry)?;
            match cmd {
                DlqCommand::List(select) => {
                    let rows = dlq::list(&config, &select.filter()).await?;
                    print_dead_letters(&rows);
                }
                DlqCommand::Replay {
                    select,
                    dry_run: true,
                } => {
                    let rows = dlq::list(&config, &select.filter()).await?;
                    print_dead_letters(&rows);
                    println!("dry run: {} dead letters would be replayed", rows.len());
                }
                DlqCommand::Replay {
                    select,
                    dry_run: false,
                } => {
                    let done = dlq::replay(&config, &select.filter()).await?;
                    let stored = done
                        .iter()
                        .filter(|(_, r)| matches!(r, Replayed::Stored { .. }))
                        .count();
                    for (id, outcome) in &done {
                        match outcome {
                            Replayed::Stored { events, .. } => {
                                println!("stored        {id} ({events} events)")
                            }
                            Replayed::StillFailing(reason) => {
                                println!("still failing {id}: {reason}")
                            }
                        }
                    }
                    println!(
                        "replayed {}: {stored} stored, {} still failing",
                        done.len(),
                        done.len() - stored
                    );
                }
            }
            Ok(())
        }),
        Command::Tenant(cmd) => {
            // Refuse a bad id before touching the database.
            if let TenantCommand::Add { id, .. } = &cmd {
                TenantId::parse(id)?;
            }
            runtime::block_on(async {
                // Inside the runtime: the OTLP exporter needs one to exist when it is built.
                let _t = telemetry::init(&config.telemetry)?;
                let pool = postgres::migrate(&config.postgres).await?;
                match cmd {
                    TenantCommand::Add { id, name, accounts } => {
                        let tenant = TenantId::parse(&id)?;
                        postgres::add_tenant(&pool, &tenant, name.as_deref(), &accounts).await?;
                        println!(
                            "tenant {tenant} registered{}",
                            if accounts.is_empty() {
                                String::new()
                            } else {
                                format!(" with accounts {}", accounts.join(", "))
                            }
                        );
                    }
                    TenantCommand::List => {
                        for t in postgres::list_tenants(&pool).await? {
                            println!(
                                "{:<24} {:<24} {}",
                                t.tenant_id,
                                t.display_name.unwrap_or_default(),
                                t.accounts.join(",")
                            );
                        }
                    }
                }
                Ok(())
            })
        }
    }
}

fn print_dead_letters(rows: &[DeadLetterRow]) {
    for r in rows {
        let mut reason: String = r.reason.chars().take(120).collect();
        if let Some(e) = &r.last_replay_error {
            reason.push_str(" | last replay: ");
            reason.extend(e.chars().take(120));
        }
        let state = if r.resolved_at.is_some() {
            "resolved"
        } else {
            "open"
        };
        println!(
            "{}  {:<8} {:<8} {:<10} {}  {}",
            r.failed_at.format("%Y-%m-%d %H:%M:%S"),
            state,
            r.source,
            r.tenant_hint.as_deref().unwrap_or("-"),
            r.dead_letter_id,
            reason
        );
    }
}

fn config_check(config: &Config, connect: bool) -> anyhow::Result<()> {
    let mut shown = config.clone();
    shown.postgres.url = runtime::redact(&shown.postgres.url);
    for secret in [&mut shown.mqtt.password, &mut shown.mqtt.admin_password] {
        if secret.is_some() {
            *secret = Some("<redacted>".into());
        }
    }
    print!("{}", toml::to_string_pretty(&shown)?);
    let mut problems = Vec::new();
    if !config.policy.bundles_dir.is_dir() {
        problems.push(format!(
            "policy.bundles_dir {} is not a directory",
            config.policy.bundles_dir.display()
        ));
    }
    if connect {
        for (name, hostport) in services::missing(config) {
            problems.push(format!("{name} does not answer at {hostport}"));
        }
    }
    if problems.is_empty() {
        eprintln!("configuration OK");
        Ok(())
    } else {
        anyhow::bail!("{}", problems.join("; "))
    }
}

async fn stop_on_signal(cancel: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("cannot install the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: draining in-flight work");
    cancel.cancel();
    // Draining takes well under a second; if something hangs, exit anyway. Nothing uncommitted
    // was acknowledged, so it is redelivered on the next start.
    tokio::time::sleep(SHUTDOWN_DEADLINE).await;
    tracing::error!("shutdown did not finish within {SHUTDOWN_DEADLINE:?}; exiting");
    std::process::exit(1);
}

const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

fn print_demo_summary(s: &portcullis::tools::demo::DemoSummary, url: &str, keep_running: bool) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    println!();
    println!(
        "Portcullis demo: {} records in {:.1} s ({:.0} records/s end to end)",
        s.records,
        secs,
        s.records as f64 / secs
    );
    println!("  events written : {}", s.events_written);
    println!("  decisions      : {} allow, {} deny", s.allow, s.deny);
    println!("  dead letters   : {}", s.dead_letters);
    if !s.top_deny_reasons.is_empty() {
        println!("  top deny reasons:");
        for (reason, n) in &s.top_deny_reasons {
            println!("    {n:>6}  {reason}");
        }
    }
    let (changes, attempts) = s.findings;
    let active: Vec<String> = s
        .active_violations
        .iter()
        .map(|(severity, n)| format!("{n} {severity}"))
        .collect();
    println!(
        "  compliance     : {} findings ({changes} changes, {attempts} failed attempts); active violations: {}",
        changes + attempts,
        if active.is_empty() { "none".into() } else { active.join(", ") }
    );
    if let Some(e) = &s.edge {
        let latest: Vec<String> = e.latest.iter().map(|(s, v)| format!("{s} v{v}")).collect();
        println!(
            "  edge agents    : {} agents; {} segment versions published while {} of them were offline",
            e.agents, e.published_while_away, e.went_offline
        );
        println!(
            "                   all {} converged on every segment's latest ({}), {:.1} s after the offline ones returned",
            e.agents,
            latest.join(", "),
            e.catch_up.as_secs_f64()
        );
    }
    println!();
    println!("Look at it:  psql {url} -c \"SELECT event_time, tenant_id, principal, action, reasons FROM decision_log WHERE outcome = 'deny' ORDER BY event_time DESC LIMIT 10\"");
    println!("             portcullis compliance violations --severity critical");
    let Some(addr) = s.http_addr else { return };
    println!();
    if keep_running {
        println!("Console:     http://{addr}/console/");
    }
    if let Some(token) = &s.token {
        println!("Sign in with this admin token (valid 7 days, shown only now):");
        println!("  {token}");
        println!("The API takes it too:  curl -s -H \"Authorization: Bearer {token}\" http://{addr}/v1/tenants");
    }
    if keep_running {
        println!();
        println!("The engine keeps running with a gentle stream (a record a second) so the console has something to show. Ctrl-C stops it.");
    }
}
