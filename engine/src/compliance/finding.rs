//! What a pack's control found on one event.

use std::sync::Arc;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::Value as Json;

use super::{Control, PackManifest};

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub manifest: Arc<PackManifest>,
    /// Index of the control in `manifest.controls`.
    pub control_index: usize,
    pub resource_type: String,
    pub resource_id: String,
    /// Whether the call did what it asked (no `errorCode`, no failed console sign-in): a team
    /// alerts on changes and still counts failed attempts.
    pub succeeded: bool,
}

impl Finding {
    pub fn control(&self) -> &Control {
        &self.manifest.controls[self.control_index]
    }

    pub fn pack(&self) -> &str {
        &self.manifest.name
    }

    pub fn pack_version(&self) -> &str {
        &self.manifest.version
    }

    /// Whether this finding opens (or keeps open) a violation: a change that happened, or, for
    /// a control about refused calls, the call itself. A failed attempt at a change does not.
    pub fn violates(&self) -> bool {
        self.succeeded || self.control().on_failure
    }
}

impl Serialize for Finding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let control = self.control();
        let mut s = serializer.serialize_struct("Finding", 7)?;
        s.serialize_field("pack", self.pack())?;
        s.serialize_field("pack_version", self.pack_version())?;
        s.serialize_field("control", &control.id)?;
        s.serialize_field("severity", &control.severity)?;
        s.serialize_field("resource_type", &self.resource_type)?;
        s.serialize_field("resource_id", &self.resource_id)?;
        s.serialize_field("succeeded", &self.succeeded)?;
        s.end()
    }
}

/// Whether a CloudTrail call succeeded: no `errorCode`, and for a console sign-in no
/// `"ConsoleLogin": "Failure"` (CloudTrail reports those with an `errorMessage` only).
pub fn call_succeeded(raw: &Json) -> bool {
    let error = raw
        .get("errorCode")
        .is_some_and(|c| !c.is_null() && c.as_str() != Some(""));
    let failed_login = raw
        .pointer("/responseElements/ConsoleLogin")
        .and_then(Json::as_str)
        == Some("Failure");
    !error && !failed_login
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::call_succeeded;

    #[test]
    fn a_call_succeeded_unless_it_says_otherwise() {
        assert!(call_succeeded(&json!({"eventName": "StopLogging"})));
        assert!(call_succeeded(&json!({"errorCode": null})));
        assert!(!call_succeeded(&json!({"errorCode": "AccessDenied"})));
        assert!(!call_succeeded(&json!({"eventName": "ConsoleLogin",
            "errorMessage": "Failed authentication", "responseElements": {"ConsoleLogin": "Failure"}})));
        assert!(call_succeeded(
            &json!({"responseElements": {"ConsoleLogin": "Success"}})
        ));
    }
}
