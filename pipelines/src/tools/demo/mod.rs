//! `portcullis demo`: services up, schema migrated, engine running, and a realistic stream of
//! CloudTrail and agent traffic driven through Kafka and MQTT, simulated edge agents taken
//! through segment policy updates, with a summary at the end.

mod agents;
mod driver;
mod generator;
mod tenants;

pub use agents::EdgeSummary;
pub use driver::{run_demo, DemoOptions, DemoSummary};
pub use generator::{Generator, Traffic};
pub use tenants::{DemoTenant, DEMO_TENANTS};
