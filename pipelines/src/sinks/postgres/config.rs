//! `[postgres]`: the system of record.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection URL. The database is created by `portcullis migrate` if it does not exist.
    pub url: String,
    /// The engine's pool; the decision API's log writer keeps one more connection of its own.
    pub max_connections: u32,
    /// How often the tenant registry (tenants and their AWS accounts) is read again.
    pub registry_refresh_secs: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: "postgres://portcullis:portcullis@127.0.0.1:5432/portcullis".into(),
            max_connections: 8,
            registry_refresh_secs: 5,
        }
    }
}
