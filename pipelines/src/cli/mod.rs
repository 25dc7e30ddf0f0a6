//! What the `portcullis` command's subcommands do beyond parsing their arguments.

pub mod agent;
pub mod approval;
pub mod broker;
pub mod compliance;
pub mod dlq;
pub mod evidence;
pub mod gateway;
pub mod model;
pub mod protection;
pub mod segment;
pub mod signal;
pub mod token;

/// Who a change made from the command line is recorded as, unless `--as` says otherwise.
pub fn cli_user() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}
