//! The process: an actix system over tokio, and `portcullis run` with everything wired together.

pub mod config;
mod run;
mod system;

pub use run::{build, redact, run, Activations, Parts};
pub use system::block_on;
