//! Compliance rule packs: shared, versioned Rego modules whose controls (with their id,
//! severity, framework mapping, resource, rationale and remediation) judge CloudTrail events
//! and report findings, apart from a tenant's own allow/deny rule.

mod compiled_pack;
mod control;
mod error;
mod finding;
mod inventory;
mod lifecycle;
mod manifest;
mod pack_ref;
mod pack_source;
mod pack_tests;
mod remediation;
mod remediation_request;
mod scan;

pub use compiled_pack::CompiledPack;
pub use control::{Control, RemediationStrategy, ResourceSpec};
pub use error::PackError;
pub use finding::{call_succeeded, Finding};
pub use inventory::{resource_change, ChangeKind, ResourceChange};
pub use lifecycle::{
    LifecycleError, StatusChange, ViolationStatus, MAX_REASON_CHARS, MAX_SUPPRESSION,
};
pub use manifest::{Framework, PackManifest};
pub use pack_ref::PackRef;
pub use pack_source::PackSource;
pub use pack_tests::{Expect, PackTestCase, TestFailure};
pub use remediation::{
    MaintenanceWindow, RemediationCommand, RemediationResult, ResultError, ResultStatus,
    MAX_RESULT_TEXT,
};
pub use remediation_request::{remediation_request, RequestRefused, RequestedRemediation};
pub use scan::{framework_controls, severity_weight, ControlResult, ControlStatus, ScanSummary};
