//! Protection levels, live: the board every decision path asks for its unit's level.
mod board;

pub use board::{Hold, ProtectionBoard, UnitConfig, UnitObserved};
