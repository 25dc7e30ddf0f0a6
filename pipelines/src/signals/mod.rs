//! External trust signals (docs/signals.md): taken from a Kafka topic and `POST /v1/signals`,
//! stored in `trust_signals` (malformed ones from Kafka as dead letters with the reason), and
//! read into the actors' `SignalBoard`, which the event path and the decision API consult.

mod config;
mod consumer;
mod refresh;
mod store;

pub use config::SignalsConfig;
pub use consumer::run_signal_consumer;
pub use refresh::{refresh_board, run_refresh};
pub use store::{keyed, keyed_or, list_signals, store_signals, SignalQuery, SignalRow};
