//! `portcullis bench engine`, `bench pipeline` and `bench policy` at a tiny size: every phase and
//! case runs and the report adds up. (Figures themselves belong in docs/benchmarks.md, not in
//! assertions.)

use crate::common;
use crate::common::TestEnv;
use portcullis::config::Config;
use portcullis::runtime::block_on;
use portcullis::tools::bench::{
    bench_url, run_engine_bench, run_pipeline_bench, run_policy_bench, BenchOptions,
    EngineBenchOptions, PolicyBenchOptions,
};

#[test]
fn the_pipeline_benchmark_runs_every_phase_in_its_own_database() {
    block_on(async {
        let env = TestEnv::new("bench").await;
        let opts = BenchOptions {
            records: 400,
            partitions: 2,
            latency_secs: 1,
            seed: 3,
        };
        let r = run_pipeline_bench(&env.config, &opts)
            .await
            .expect("benchmark runs");
        assert_eq!(r.records, 400);
        assert!(r.messages > 0 && r.messages <= 400);
        assert!(r.ceiling_secs > 0.0 && r.pipeline_secs > 0.0 && r.produce_secs > 0.0);
        assert!(r.latency_events > 0);
        assert!(
            r.latency_p50_ms > 0.0 && r.latency_p50_ms <= r.latency_p99_ms,
            "{r:?}"
        );

        // It wrote to `{database}_bench`, not to the configured database.
        assert_eq!(env.count("SELECT count(*) FROM events").await, 0);
        let bench = sqlx::PgPool::connect(&bench_url(&env.config.postgres.url))
            .await
            .unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&bench)
            .await
            .unwrap();
        assert_eq!(
            rows as u64,
            400 + r.latency_events,
            "pipeline phase plus latency probes, each once"
        );
        let decisions: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions")
            .fetch_one(&bench)
            .await
            .unwrap();
        assert_eq!(decisions, rows);
        bench.close().await;
        common::drop_database(&common::database_of(&bench_url(&env.config.postgres.url))).await;
        env.cleanup().await;
    });
}

#[test]
fn the_engine_benchmark_runs_the_ceiling_and_the_staged_path_over_the_same_messages() {
    block_on(async {
        let env = TestEnv::new("enginebench").await;
        let opts = EngineBenchOptions {
            records: 3_000,
            seed: 3,
        };
        let r = run_engine_bench(&env.config, &opts)
            .await
            .expect("benchmark runs");
        assert_eq!(r.records, 3_000);
        assert!(
            r.messages > 0 && r.messages < 3_000,
            "log files hold several records"
        );
        for phase in [
            &r.ceiling,
            &r.no_packs,
            &r.engine,
            &r.collecting,
            &r.scoring,
        ] {
            assert!(phase.secs > 0.0 && phase.engine_cpu_secs > 0.0, "{r:?}");
        }
        assert!(
            r.findings > 0,
            "the demo bundles enable packs, and they find things"
        );
        // The engine's phase is what it left in `{database}_bench`: every event and decision once.
        assert_eq!(env.count("SELECT count(*) FROM events").await, 0);
        let bench = sqlx::PgPool::connect(&bench_url(&env.config.postgres.url))
            .await
            .unwrap();
        // The last phase scored every event; the collecting phase trained one model per tenant.
        for table in [
            "events",
            "decisions",
            "decisions WHERE anomaly_score IS NOT NULL",
        ] {
            let rows: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&bench)
                    .await
                    .unwrap();
            assert_eq!(rows, 3_000, "{table}");
        }
        let models: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT tenant_id) FROM anomaly_models WHERE scope = 'cloudtrail'",
        )
        .fetch_one(&bench)
        .await
        .unwrap();
        assert_eq!(models, 3, "a model per demo tenant");
        bench.close().await;
        common::drop_database(&common::database_of(&bench_url(&env.config.postgres.url))).await;
        env.cleanup().await;
    });
}

#[test]
fn the_policy_benchmark_times_every_case_on_the_shipped_bundles() {
    block_on(async {
        let mut config = Config::default();
        config.policy.bundles_dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tenants");
        config.policy.packs_dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/packs");
        let opts = PolicyBenchOptions {
            iterations: 200,
            grown: vec![20],
            seed: 5,
        };
        let cases = run_policy_bench(&config, &opts)
            .await
            .expect("benchmark runs");
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        for expected in [
            "abac (seed 001), TenantPolicy::query",
            "abac (seed 001), an evaluator from the store",
            "abac (seed 001), the store (the API's path)",
            "cloudtrail pack, 15 rules, interpreter",
            "cloudtrail pack, 15 rules, vm",
            "cloudtrail pack, 15 rules, dispatch",
            "cloudtrail pack, 20 rules, dispatch",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        for case in &cases {
            assert_eq!(case.evaluations, 200, "{case}");
            assert!(
                case.p50_us > 0.0 && case.p50_us <= case.p99_us && case.p99_us <= case.p999_us,
                "{case}"
            );
        }
    });
}

#[test]
fn the_fanout_benchmark_measures_the_broker_ceiling_and_the_engine_on_the_same_agents() {
    block_on(async {
        let env = TestEnv::new("bench_fanout").await;
        let opts = portcullis::tools::bench::FanoutOptions {
            agents: 40,
            connect_batch: 20,
            timeout: std::time::Duration::from_secs(30),
        };
        let r = portcullis::tools::bench::run_fanout_bench(&env.config, &opts)
            .await
            .expect("benchmark runs");
        assert_eq!((r.ceiling.applied, r.engine.applied), (40, 40), "{r:?}");
        for s in [&r.ceiling, &r.engine] {
            assert!(
                s.p50_ms > 0.0 && s.p50_ms <= s.p99_ms && s.p99_ms <= s.max_ms,
                "{r:?}"
            );
        }
        assert!(r.payload_bytes > 200, "a real signed envelope: {r:?}");
        common::drop_database(&common::database_of(&bench_url(&env.config.postgres.url))).await;
        env.cleanup().await;
    });
}

#[test]
fn the_sessions_benchmark_measures_live_sessions_then_passivated_ones() {
    block_on(async {
        let env = TestEnv::new("bench_sessions").await;
        let opts = portcullis::tools::bench::SessionsOptions {
            agents: 100,
            // Well beyond how long 100 hellos take even on a busy debug build, or the first
            // would passivate before the last are counted.
            idle_secs: 10,
        };
        let r = portcullis::tools::bench::run_sessions_bench(&env.config, &opts)
            .await
            .expect("benchmark runs: every hello handled, every session live, then passivated");
        assert_eq!(r.agents, 100);
        assert!(r.hello_secs > 0.0, "{r:?}");
        assert!(
            r.baseline_rss > 0 && r.live_rss > 0 && r.passivated_rss > 0,
            "{r:?}"
        );
        assert!(r.per_live_session().is_finite(), "{r:?}");
        common::drop_database(&common::database_of(&bench_url(&env.config.postgres.url))).await;
        env.cleanup().await;
    });
}

#[test]
fn the_scan_benchmark_scans_the_findings_it_stored_against_reading_them() {
    block_on(async {
        let env = TestEnv::new("scanbench").await;
        let r = portcullis::tools::bench::run_scan_bench(
            &env.config,
            &portcullis::tools::bench::ScanBenchOptions {
                findings: 20_000,
                resources: 50,
                rounds: 1,
            },
        )
        .await
        .expect("benchmark runs");
        assert_eq!((r.findings, r.violations), (20_000, 750));
        assert!(r.scan > std::time::Duration::ZERO && r.ceiling > std::time::Duration::ZERO);
        // Eight tenths of the violations are open: every control fails.
        assert_eq!(r.failed_controls, 15);
        common::drop_database(&common::database_of(&bench_url(&env.config.postgres.url))).await;
        env.cleanup().await;
    });
}
