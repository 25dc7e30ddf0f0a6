//! Compliance on the engine's edges (docs/compliance.md): violations in Postgres and their
//! lifecycle, the resource inventory, and remediation over Kafka. The packs' controls and the
//! lifecycle's rules are the engine's (`portcullis_engine::compliance`); findings are written
//! with their decisions by the sink.

mod config;
mod remediation;
mod report;
mod resources;
mod scans;
mod schedule;
mod violations;

pub use config::ComplianceConfig;
pub use remediation::{
    apply_result, remediations, request_remediation, run_results_consumer, run_sender,
    send_pending, Applied, RemediationRow, RequestError, SendError,
};

pub use report::{render, ReportFormat, OCSF_VERSION};
pub use resources::{resources, ResourceQuery, ResourceRow};
pub use scans::{frameworks_of, run_scan, scan, scans, ScanError, ScanRow};
pub use schedule::{run_scheduled_scans, SCHEDULE};

pub use violations::{
    change_status, evidence, get, history, list, ChangeError, FindingRow, HistoryRow,
    ViolationQuery, ViolationRow,
};
