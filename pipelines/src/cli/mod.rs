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
