//! The document a policy sees as `input`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::Event;

/// A tenant's protection level (seed 002). Constant `Permissive` until protection levels land.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtectionLevel {
    Permissive,
    RequireApproval,
    ReadOnly,
}

/// What the engine knows besides the event itself; policies read it as `input.context`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyContext {
    pub protection_level: ProtectionLevel,
    /// Anomaly score in [0, 1]; 0 until anomaly models land.
    pub anomaly_score: f64,
    /// Principal trust in [0, 1]; 1 until trust scores land.
    pub principal_trust: f64,
    /// When the decision is being made.
    pub now: DateTime<Utc>,
}

impl PolicyContext {
    pub fn neutral(now: DateTime<Utc>) -> Self {
        Self {
            protection_level: ProtectionLevel::Permissive,
            anomaly_score: 0.0,
            principal_trust: 1.0,
            now,
        }
    }
}

/// A decision API caller's input with the engine's `context` set on it. The caller cannot supply
/// its own `context`: protection level and trust are the engine's to say. A missing input
/// becomes `{"context": …}`; a non-object input is passed as it is (there is nowhere to put it).
pub(crate) fn with_context(input: Option<Value>, ctx: &PolicyContext) -> Value {
    match input {
        None => json!({ "context": context_json(ctx) }),
        Some(Value::Object(mut o)) => {
            o.insert("context".into(), context_json(ctx));
            Value::Object(o)
        }
        Some(other) => other,
    }
}

fn context_json(ctx: &PolicyContext) -> Value {
    json!({
        "protection_level": ctx.protection_level,
        "anomaly_score": ctx.anomaly_score,
        "principal_trust": ctx.principal_trust,
        "time": ctx.now.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// `{"event": normalized fields, "raw": original record}`: what a policy sees of an event, and
/// what the decision stream shows as its input.
pub fn event_document(event: &Event) -> Value {
    json!({
        "event": {
            "id": event.event_id,
            "tenant_id": event.tenant_id,
            "source": event.source,
            "kind": event.kind,
            "time": event.event_time.to_rfc3339_opts(SecondsFormat::Millis, true),
            "principal": event.principal,
            "action": event.action,
            "service": event.service,
            "resource": event.resource,
            "source_ip": event.source_ip,
            "account": event.account,
        },
        "raw": event.raw,
    })
}

/// The event document with the engine's `context`: the `input` of an event's evaluation.
pub(crate) fn event_input(event: &Event, ctx: &PolicyContext) -> Value {
    let mut input = event_document(event);
    if let Value::Object(o) = &mut input {
        o.insert("context".into(), context_json(ctx));
    }
    input
}
