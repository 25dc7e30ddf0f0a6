//! `portcullis bench policy`: in-process decision latency, per evaluation, for seed 001's ABAC
//! policy (the decision API's shape), for a tenant's bundle with and without its compliance
//! packs, and for a 15-rule CloudTrail pack (the stream's shape), then the pack grown with more
//! rules, to show how cost follows the rule count.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::Utc;
use portcullis_actors::{answer_query, BundleSource, PolicyStore, Query};
use portcullis_engine::decode::decode_cloudtrail;
use portcullis_engine::policy::{CompileOptions, Evaluator, PolicyContext, RulePath};
use portcullis_engine::{Bundle, Event, TenantId, TenantPolicy, TenantRegistry};
use serde_json::{json, Value};

use crate::config::Config;
use crate::policy_service::bundle_files::FsBundleSource;
use crate::policy_service::pack_files::FsPackSource;
use crate::tools::demo::{Generator, DEMO_TENANTS};

/// The CIS CloudTrail pack, as shipped in `policies/packs/`.
const CIS_PACK: &str = include_str!("../../../../policies/examples/cis_cloudtrail.rego");

#[derive(Debug, Clone)]
pub struct PolicyBenchOptions {
    /// Evaluations measured per case (after as many again for warm-up).
    pub iterations: usize,
    /// Total rule counts for the growth cases (the pack's 15 plus generated rules).
    pub grown: Vec<usize>,
    pub seed: u64,
}

/// Latency figures of one case, in microseconds.
#[derive(Debug, Clone)]
pub struct CaseReport {
    pub name: String,
    pub evaluations: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub mean_us: f64,
    /// How long compiling the bundle took, for the cases that compile one of their own.
    pub compile_ms: Option<f64>,
}

impl std::fmt::Display for CaseReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<44} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            self.name, self.evaluations, self.p50_us, self.p99_us, self.p999_us, self.mean_us
        )?;
        match self.compile_ms {
            Some(ms) => write!(f, " {ms:>10.1}"),
            None => Ok(()),
        }
    }
}

pub const HEADER: &str =
    "case                                         evals   p50 µs    p99 µs   p999 µs   mean µs compile ms";

fn report(name: impl Into<String>, mut ns: Vec<u64>) -> CaseReport {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)] as f64 / 1000.0;
    CaseReport {
        name: name.into(),
        evaluations: ns.len(),
        p50_us: at(0.50),
        p99_us: at(0.99),
        p999_us: at(0.999),
        mean_us: ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0,
        compile_ms: None,
    }
}

/// Times `f` over `iterations` calls after as many warm-up calls; `f(i)` gets the call number.
fn time(iterations: usize, mut f: impl FnMut(usize)) -> Vec<u64> {
    for i in 0..iterations {
        f(i);
    }
    (0..iterations)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_nanos() as u64
        })
        .collect()
}

/// Seed 001's ABAC requests: allowed reads, denied regions, writers and non-writers.
fn abac_inputs() -> Vec<Value> {
    let req = |user: &str, action: &str, region: &str, kind: &str| {
        json!({
            "subject": {"tenant_id": "acme", "user_id": user},
            "action": action,
            "resource": {"type": kind, "region": region},
            "environment": {"time": "2026-11-22T10:00:00Z"}
        })
    };
    vec![
        req("alice", "read", "EU", "sensor_data"),
        req("alice", "read", "US", "sensor_data"),
        req("bob", "write", "EU", "customer_record"),
        req("mallory", "delete", "EU", "customer_record"),
    ]
}

fn pack_bundle(tenant: &TenantId, extra_rules: usize) -> Bundle {
    let pack = CIS_PACK.replace("package tenants.pack", &format!("package tenants.{tenant}"));
    let mut modules = vec![("cis_cloudtrail.rego".to_owned(), pack)];
    if extra_rules > 0 {
        modules.push(("grown.rego".to_owned(), grown_rules(tenant, extra_rules)));
    }
    Bundle {
        tenant: tenant.clone(),
        modules,
        data: None,
        revision: Some(format!("bench-{extra_rules}")),
        mask: Vec::new(),
        packs: Vec::new(),
    }
}

/// `n` more detections shaped like the pack's (event source + a set of event names), for
/// events that never occur: they cost what a real rule costs on a non-matching event.
fn grown_rules(tenant: &TenantId, n: usize) -> String {
    let mut src = format!("package tenants.{tenant}\nimport rego.v1\n");
    for i in 0..n {
        src.push_str(&format!(
            "violations contains \"custom control {i}\" if {{\n\tinput.raw.eventSource == \"svc{i}.amazonaws.com\"\n\tinput.raw.eventName in {{\"Create{i}\", \"Delete{i}\", \"Update{i}\"}}\n}}\n"
        ));
    }
    src
}

/// Realistic CloudTrail events (the demo generator's mix, 4% suspicious) for one tenant.
fn cloudtrail_events(tenant: &TenantId, count: usize, seed: u64) -> Vec<Event> {
    let mut registry = TenantRegistry::new();
    for t in DEMO_TENANTS {
        for a in t.accounts {
            registry.add_account(*a, tenant.clone());
        }
    }
    let mut generator = Generator::new(seed, Utc::now(), "portcullis");
    (0..count)
        .filter_map(|_| {
            let record = generator.cloudtrail_record();
            let payload = serde_json::to_vec(&record).ok()?;
            decode_cloudtrail(&payload, &registry, usize::MAX)
                .into_iter()
                .next()?
                .ok()
        })
        .collect()
}

/// Runs every case.
pub async fn run_policy_bench(
    config: &Config,
    opts: &PolicyBenchOptions,
) -> anyhow::Result<Vec<CaseReport>> {
    if opts.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let ctx = PolicyContext::neutral(Utc::now());
    let mut out = Vec::new();

    // Seed 001's ABAC policy through the decision API's path, in process.
    let source = Arc::new(
        FsBundleSource::new(&config.policy.bundles_dir)
            .with_packs(FsPackSource::new(&config.policy.packs_dir)),
    );
    let acme = TenantId::parse("acme")?;
    let bundle = source.load(&acme).with_context(|| {
        format!(
            "the ABAC case needs the shipped acme bundle under {} (policy.bundles_dir)",
            config.policy.bundles_dir.display()
        )
    })?;
    let mut abac = TenantPolicy::compile(&bundle, &config.policy.rule)?;
    let allow = RulePath::from_url("allow")?;
    let inputs = abac_inputs();
    let mut defined = 0usize;
    let ns = time(opts.iterations, |i| {
        let a = abac
            .query(&allow, Some(&inputs[i % inputs.len()]), &ctx)
            .expect("ABAC evaluation");
        defined += usize::from(a.result.is_some());
    });
    if defined != 2 * opts.iterations {
        bail!(
            "the ABAC rule was undefined for some inputs: the acme bundle is not the shipped one"
        );
    }
    out.push(report("abac (seed 001), TenantPolicy::query", ns));
    let interpreted = CompileOptions {
        evaluator: Evaluator::Interpreter,
        ..CompileOptions::default()
    };
    let mut abac_interpreted =
        TenantPolicy::compile_with(&bundle, &config.policy.rule, &interpreted)?;
    let ns = time(opts.iterations, |i| {
        abac_interpreted
            .query(&allow, Some(&inputs[i % inputs.len()]), &ctx)
            .expect("ABAC evaluation");
    });
    out.push(report("abac (seed 001), query, interpreter", ns));

    // What the decision API does: the store's serving policy, on one of its evaluators, the
    // input masked for the log. The first case, a private copy evaluated directly, is what
    // per-thread copies would cost (docs/decisions/0014).
    let store = PolicyStore::new(source, config.policy.rule.clone());
    let serving = store
        .activate(&acme)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .load_full();
    // The same evaluation as the first case, on an evaluator taken from the store's spares and
    // handed back: the difference is what sharing one published policy costs.
    let ns = time(opts.iterations, |i| {
        serving.with_evaluator(|p| {
            p.query(&allow, Some(&inputs[i % inputs.len()]), &ctx)
                .expect("ABAC evaluation")
        });
    });
    out.push(report("abac (seed 001), an evaluator from the store", ns));
    let ns = time(opts.iterations, |i| {
        let q = Query {
            path: allow.clone(),
            input: Some(inputs[i % inputs.len()].clone()),
            now: Utc::now(),
            protection: None,
            signals: std::sync::Arc::from([]),
        };
        answer_query(&serving, q).expect("ABAC evaluation");
    });
    out.push(report("abac (seed 001), the store (the API's path)", ns));

    // Compliance packs on the stream's path: acme's bundle as shipped (its rule and the two
    // packs it enables) against the same bundle with the packs taken out, on the same events.
    // The difference is what the packs cost an event in the engine.
    let acme_events = cloudtrail_events(&acme, 2000, opts.seed);
    let without = Bundle {
        packs: Vec::new(),
        ..bundle.clone()
    };
    if bundle.packs.is_empty() {
        bail!("the packs case needs the shipped acme bundle, which enables compliance packs");
    }
    for (name, b) in [
        ("acme, no packs, TenantPolicy::evaluate", &without),
        ("acme with its 2 compliance packs", &bundle),
    ] {
        let mut policy = TenantPolicy::compile(b, &config.policy.rule)?;
        let mut findings = 0usize;
        let ns = time(opts.iterations, |i| {
            let d = policy
                .evaluate(&acme_events[i % acme_events.len()], &ctx)
                .expect("evaluation");
            findings += d.findings.len();
        });
        if b.packs.is_empty() != (findings == 0) {
            bail!("{name}: {findings} findings; the packs did not judge these events as expected");
        }
        out.push(report(name, ns));
    }

    // The CloudTrail pack on the stream's path: one event in, one decision out.
    let bench = TenantId::parse("bench")?;
    let events = cloudtrail_events(&bench, 2000, opts.seed);
    let mut totals: Vec<usize> = vec![15];
    totals.extend(opts.grown.iter().copied().filter(|&n| n > 15));
    for total in totals {
        let bundle = pack_bundle(&bench, total - 15);
        for evaluator in [Evaluator::Interpreter, Evaluator::Vm, Evaluator::Dispatch] {
            let options = CompileOptions {
                evaluator,
                ..CompileOptions::default()
            };
            let compile = Instant::now();
            let mut pack = TenantPolicy::compile_with(&bundle, "decision", &options)?;
            let compile_ms = compile.elapsed().as_secs_f64() * 1000.0;
            let used = pack.evaluator_status().evaluator;
            if used != evaluator {
                bail!(
                    "the pack fell back from {evaluator} to {used}: {:?}",
                    pack.fallback_reason()
                );
            }
            let mut denied = 0usize;
            let ns = time(opts.iterations, |i| {
                let d = pack
                    .evaluate(&events[i % events.len()], &ctx)
                    .expect("pack evaluation");
                denied += usize::from(!d.allowed);
            });
            if denied == 0 {
                bail!("the pack denied nothing: the generated events did not reach it");
            }
            out.push(CaseReport {
                compile_ms: Some(compile_ms),
                ..report(format!("cloudtrail pack, {total} rules, {evaluator}"), ns)
            });
        }
    }
    Ok(out)
}
