//! The `portcullis` binary as an operator meets it: help, config validation, exit codes.

use std::process::Command;

fn portcullis(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(args).current_dir(dir.path());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_every_command() {
    let (code, out, _) = portcullis(&["--help"], &[]);
    assert_eq!(code, 0);
    for cmd in [
        "run",
        "migrate",
        "demo",
        "config",
        "tenant",
        "token",
        "dlq",
        "segment",
        "signing-key",
        "agent",
        "broker",
        "model",
        "bench",
    ] {
        assert!(out.contains(cmd), "--help lacks {cmd}:\n{out}");
    }
    assert!(
        out.contains("PORTCULLIS_"),
        "--help should explain env overrides"
    );
}

#[test]
fn config_check_prints_effective_settings_with_env_overrides() {
    let (code, out, err) = portcullis(
        &["config", "check"],
        &[
            ("PORTCULLIS_KAFKA__TOPIC", "audit"),
            ("PORTCULLIS_POLICY__BUNDLES_DIR", "."),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("topic = \"audit\""), "{out}");
    assert!(err.contains("configuration OK"));
}

#[test]
fn config_check_rejects_bad_settings_with_reasons() {
    let (code, _, err) = portcullis(
        &["config", "check"],
        &[("PORTCULLIS_MQTT__TOPIC_PREFIX", "a/#")],
    );
    assert_eq!(code, 2);
    assert!(err.contains("mqtt.topic_prefix"), "{err}");
    let (code, _, err) = portcullis(&["--config", "missing.toml", "config", "check"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.toml does not exist"), "{err}");
    // A bundles directory that does not exist is caught by the check (exit 1).
    let (code, _, err) = portcullis(
        &["config", "check"],
        &[("PORTCULLIS_POLICY__BUNDLES_DIR", "/nonexistent")],
    );
    assert_eq!(code, 1);
    assert!(err.contains("policy.bundles_dir"), "{err}");
}

#[test]
fn authentication_can_be_off_only_on_loopback() {
    let (code, _, err) = portcullis(
        &["config", "check"],
        &[
            ("PORTCULLIS_HTTP__AUTH", "false"),
            ("PORTCULLIS_HTTP__LISTEN", "0.0.0.0:8181"),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("http.auth = false"), "{err}");
    let (code, _, err) = portcullis(
        &["config", "check"],
        &[
            ("PORTCULLIS_HTTP__AUTH", "false"),
            ("PORTCULLIS_HTTP__LISTEN", "127.0.0.1:8181"),
            ("PORTCULLIS_POLICY__BUNDLES_DIR", "."),
        ],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn token_create_refuses_bad_scopes_before_touching_the_database() {
    let (code, _, err) = portcullis(
        &["token", "create", "--name", "x", "--scope", "everything"],
        &[(
            "PORTCULLIS_POSTGRES__URL",
            "postgres://nobody@127.0.0.1:1/x",
        )],
    );
    assert_eq!(code, 1);
    assert!(err.contains("scope \"everything\""), "{err}");
}

#[test]
fn tenant_add_refuses_hostile_ids_before_touching_the_database() {
    let (code, _, err) = portcullis(
        &["tenant", "add", "../etc"],
        &[(
            "PORTCULLIS_POSTGRES__URL",
            "postgres://nobody@127.0.0.1:1/x",
        )],
    );
    assert_eq!(code, 1);
    assert!(err.contains("tenant id"), "{err}");
}

#[test]
fn run_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};

    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let base = portcullis::config::Config::default().postgres.url;
    let db_url = format!(
        "{}/pc_test_sigterm_{}",
        base.rsplit_once('/').unwrap().0,
        &suffix[..12]
    );
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tenants");
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("run")
        .env(
            "PORTCULLIS_DISTRIBUTION__SIGNING_KEY_FILE",
            state.path().join("policy-signing.key"),
        )
        .env("PORTCULLIS_POSTGRES__URL", &db_url)
        .env("PORTCULLIS_KAFKA__TOPIC", format!("ct_sigterm_{suffix}"))
        .env("PORTCULLIS_KAFKA__GROUP_ID", format!("g_sigterm_{suffix}"))
        .env("PORTCULLIS_MQTT__CLIENT_ID", format!("pc-sigterm-{suffix}"))
        .env("PORTCULLIS_MQTT__TOPIC_PREFIX", format!("pctest/{suffix}"))
        .env("PORTCULLIS_POLICY__BUNDLES_DIR", &policies)
        .env("PORTCULLIS_POLICY__PACKS_DIR", policies.join("../packs"))
        .env("PORTCULLIS_HTTP__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if log.contains("engine running") && log.contains("mqtt connected") {
            break;
        }
    }
    assert!(
        log.contains("engine running"),
        "engine did not start:\n{log}"
    );
    let stopped_at = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    std::thread::spawn(move || lines.for_each(drop)); // keep draining stderr
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped_at.elapsed() < Duration::from_secs(10),
            "did not exit within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    portcullis::runtime::block_on(async {
        let admin = sqlx::PgPool::connect(&base).await.unwrap();
        let db = db_url.rsplit('/').next().unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
        )))
        .execute(&admin)
        .await
        .unwrap();
    });
}
