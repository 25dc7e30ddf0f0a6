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
    for cmd in ["run", "migrate", "demo", "config", "tenant"] {
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
