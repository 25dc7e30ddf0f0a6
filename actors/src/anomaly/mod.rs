//! The anomaly-model entity: one per tenant and scope, it turns events into features (with its
//! principals' behaviour), scores them with the current model, and names the training session
//! that collects them.

mod actor;
mod store;

pub use actor::{Finding, ModelActor, Observation, Observe, Reload};
pub use store::{ModelState, ModelStore, ModelStoreError, StoredTrust};
