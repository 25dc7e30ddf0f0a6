//! Tools around the engine, apart from its runtime: the demo, benchmarks, and local services.

pub mod bench;
pub mod demo;
pub mod services;
