//! External trust signals, live: who has signals that still last.
mod board;

pub use board::{SignalBoard, StoredSignal};
