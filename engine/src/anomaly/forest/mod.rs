//! The Isolation Forest: trees, their layout, and the path-length arithmetic.

mod isolation_forest;
mod isolation_tree;
mod path_length;

pub use isolation_forest::{ForestParams, IsolationForest};
pub use path_length::average_path_length;
