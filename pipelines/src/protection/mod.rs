//! Protection levels in Postgres and over time (docs/protection.md): the configured units,
//! every change of level, and the load sampled for the console; the ticker that drives the
//! board (`portcullis_actors::ProtectionBoard`) and records what it saw.

mod config;
mod store;
mod ticker;

pub use config::ProtectionConfig;
pub use store::{
    finite_json, list_samples, list_transitions, list_units, load_board, remove_unit, set_unit,
    SampleRow, TransitionRow, UnitRow,
};
pub use ticker::run_ticker;
