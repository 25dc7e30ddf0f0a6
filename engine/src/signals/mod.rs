//! External trust signals (seed 002's TDX): what other security tools say about a principal or
//! an agent (a leaked credential, a compromised host), for a while. While a signal lasts it
//! lowers its subject's trust and policy sees it in `input.context.signals`
//! (docs/signals.md). Pure parts: reading and checking a signal, and what signals do to trust.

mod severity;
mod signal;

pub use severity::Severity;
pub use signal::{trust_after, ActiveSignal, Signal, SignalError, MAX_SIGNAL_BYTES};
