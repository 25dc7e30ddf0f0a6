//! `[http]`: the HTTP server (decision API, bundle status, decision stream, health, metrics).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub enabled: bool,
    /// Address of the decision API, /healthz, /readyz and /metrics. Port 0 picks a free one.
    pub listen: String,
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
            max_body_bytes: 1024 * 1024,
            workers: 0,
            decision_log_queue: 10_000,
            stream_buffer: 1024,
        }
    }
}
