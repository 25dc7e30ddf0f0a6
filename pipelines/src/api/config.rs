//! `[http]`: the HTTP server (decision API, bundle status, decision stream, health, metrics).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub enabled: bool,
    /// Address of the decision API, /healthz, /readyz and /metrics. Port 0 picks a free one.
    pub listen: String,
    /// Every endpoint but /healthz, /readyz and /metrics needs a bearer token
    /// (`portcullis token create`). Turn off only on a trusted loopback: everyone who reaches
    /// the port then reads and administers every tenant. Refused on any other address.
    pub auth: bool,
    /// Largest decision API request body; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Decision API decisions waiting to be written to Postgres. When the log falls this far
    /// behind, queries are answered 503 rather than left unlogged.
    pub decision_log_queue: usize,
    /// Decisions buffered per decision-stream channel; a subscriber further behind is sent a
    /// `lagged` message with the number it missed.
    pub stream_buffer: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:8181".into(),
            auth: true,
            max_body_bytes: 1024 * 1024,
            workers: 0,
            decision_log_queue: 10_000,
            stream_buffer: 1024,
        }
    }
}

impl HttpConfig {
    /// Whether `listen` only accepts connections from this machine.
    pub fn listens_on_loopback(&self) -> bool {
        let host = match self.listen.rsplit_once(':') {
            Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
            None => return false,
        };
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::HttpConfig;

    #[test]
    fn loopback_addresses_are_told_apart_from_the_rest() {
        let on = |listen: &str| {
            HttpConfig {
                listen: listen.into(),
                ..HttpConfig::default()
            }
            .listens_on_loopback()
        };
        for l in [
            "127.0.0.1:8181",
            "127.0.0.2:1",
            "[::1]:8181",
            "localhost:80",
        ] {
            assert!(on(l), "{l}");
        }
        for l in [
            "0.0.0.0:8181",
            "[::]:8181",
            "10.0.0.5:8181",
            "example.com:80",
            "8181",
        ] {
            assert!(!on(l), "{l}");
        }
    }
}
