//! Checks that the local services answer, and starts them with `scripts/services up` if not.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::config::Config;

/// `(name, host:port)` of every service the configuration uses.
pub fn endpoints(cfg: &Config) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(hostport) = postgres_hostport(&cfg.postgres.url) {
        v.push(("postgres", hostport));
    }
    if cfg.kafka.enabled {
        if let Some(first) = cfg.kafka.brokers.split(',').next() {
            v.push(("kafka", first.trim().to_owned()));
        }
    }
    if cfg.mqtt.enabled {
        v.push(("mqtt", format!("{}:{}", cfg.mqtt.host, cfg.mqtt.port)));
    }
    v
}

fn postgres_hostport(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    let hostport = rest.split(['/', '?']).next()?;
    Some(if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    })
}

pub fn reachable(hostport: &str) -> bool {
    let addrs: Vec<SocketAddr> = hostport
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default();
    addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_millis(500)).is_ok())
}

/// The services that do not answer.
pub fn missing(cfg: &Config) -> Vec<(&'static str, String)> {
    endpoints(cfg)
        .into_iter()
        .filter(|(_, hp)| !reachable(hp))
        .collect()
}

/// Runs `scripts/services up` (found from the working directory upwards) when a service is down.
pub fn ensure_up(cfg: &Config) -> anyhow::Result<()> {
    let down = missing(cfg);
    if down.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = down.iter().map(|(n, hp)| format!("{n} ({hp})")).collect();
    let Some(script) = find_script() else {
        bail!("not reachable: {}; start them, or run from the repository so `scripts/services up` can", names.join(", "));
    };
    eprintln!(
        "not reachable: {}; running {} up",
        names.join(", "),
        script.display()
    );
    let status = Command::new("bash")
        .arg(&script)
        .arg("up")
        .status()
        .context("cannot run the services script")?;
    if !status.success() {
        bail!("{} up failed ({status})", script.display());
    }
    let still = missing(cfg);
    if !still.is_empty() {
        let names: Vec<String> = still.iter().map(|(n, hp)| format!("{n} ({hp})")).collect();
        bail!(
            "still not reachable after `services up`: {}",
            names.join(", ")
        );
    }
    Ok(())
}

fn find_script() -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let candidate = dir.join("scripts/services");
        if candidate.is_file() {
            return Some(candidate);
        }
        if !dir.pop() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_configured_endpoint() {
        let cfg = Config::default();
        let eps = endpoints(&cfg);
        assert_eq!(
            eps,
            vec![
                ("postgres", "127.0.0.1:5432".to_owned()),
                ("kafka", "127.0.0.1:9092".to_owned()),
                ("mqtt", "127.0.0.1:1883".to_owned())
            ]
        );
        assert_eq!(
            postgres_hostport("postgres://db.internal/x").as_deref(),
            Some("db.internal:5432")
        );
    }
}
