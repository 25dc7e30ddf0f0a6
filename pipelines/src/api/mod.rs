//! The engine's HTTP server: the OPA-shaped decision API, bundle status, the decision stream,
//! health and metrics.

mod bundles;
pub mod config;
mod data;
mod error;
mod health;
mod server;
mod stream;

use server::State;
pub use server::{start, Services};
