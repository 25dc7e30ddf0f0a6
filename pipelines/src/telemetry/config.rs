//! `[telemetry]`: logs and traces.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log filter in `RUST_LOG` syntax. `RUST_LOG` itself, when set, wins.
    pub log: String,
    /// OTLP/gRPC endpoint for traces (e.g. `http://127.0.0.1:4317`); none means no export.
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log: "info,sqlx=warn".into(),
            otlp_endpoint: None,
            service_name: "portcullis".into(),
        }
    }
}
