//! External trust signals (seed 002's TDX): what other security tools say about a principal, an
//! agent or a protection unit (a leaked credential, a compromised host, a service under attack),
//! for a while. While a signal lasts it lowers its principal's or agent's trust and policy sees
//! it in `input.context.signals`, or it holds its unit's protection level up (docs/signals.md). Pure parts: reading and checking a signal, and what signals do to trust.

mod severity;
mod signal;

pub use severity::Severity;
pub use signal::{subject_kind, trust_after, ActiveSignal, Signal, SignalError, MAX_SIGNAL_BYTES};
