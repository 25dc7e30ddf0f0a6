//! The document a policy sees as `input`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::rego_value::{object, opt_str, to_rego};
use super::PolicyError;
use crate::Event;

/// A tenant's protection level (seed 002). Constant `Permissive` until protection levels land.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtectionLevel {
    Permissive,
    RequireApproval,
    ReadOnly,
}

impl ProtectionLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permissive => "permissive",
            Self::RequireApproval => "require_approval",
            Self::ReadOnly => "read_only",
        }
    }
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

/// A decision API caller's input (JSON text, parsed here straight into the engine's values) with
/// the engine's `context` set on it. The caller cannot supply its own `context`: protection
/// level and trust are the engine's to say. A missing input becomes `{"context": …}`; a
/// non-object input is passed as it is (there is nowhere to put it).
pub(crate) fn with_context(
    input: Option<&RawValue>,
    ctx: &PolicyContext,
) -> Result<regorus::Value, PolicyError> {
    let context = context_rego(ctx);
    let Some(text) = input else {
        return Ok(object([("context", context)]));
    };
    let mut value: regorus::Value =
        serde_json::from_str(text.get()).map_err(|e| PolicyError::Input(e.to_string()))?;
    if let Ok(fields) = value.as_object_mut() {
        fields.insert(regorus::Value::from("context"), context);
    }
    Ok(value)
}

/// `input.raw.eventName`, which selects the dispatched variant of a CloudTrail pack.
pub(crate) fn event_name(input: &regorus::Value) -> Option<&str> {
    let raw = input.as_object().ok()?.get(&regorus::Value::from("raw"))?;
    match raw
        .as_object()
        .ok()?
        .get(&regorus::Value::from("eventName"))?
    {
        regorus::Value::String(name) => Some(name),
        _ => None,
    }
}

fn context_rego(ctx: &PolicyContext) -> regorus::Value {
    object([
        (
            "protection_level",
            regorus::Value::from(ctx.protection_level.as_str()),
        ),
        ("anomaly_score", regorus::Value::from(ctx.anomaly_score)),
        ("principal_trust", regorus::Value::from(ctx.principal_trust)),
        (
            "time",
            regorus::Value::from(ctx.now.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ),
    ])
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

/// The event document with the engine's `context`: the `input` of an event's evaluation, built
/// straight into the engine's values (this runs for every event).
pub(crate) fn event_input(event: &Event, ctx: &PolicyContext) -> regorus::Value {
    let fields = object([
        ("id", regorus::Value::from(event.event_id.as_str())),
        ("tenant_id", regorus::Value::from(event.tenant_id.as_str())),
        ("source", regorus::Value::from(event.source.as_str())),
        ("kind", regorus::Value::from(event.kind.as_str())),
        (
            "time",
            regorus::Value::from(
                event
                    .event_time
                    .to_rfc3339_opts(SecondsFormat::Millis, true),
            ),
        ),
        ("principal", regorus::Value::from(event.principal.as_str())),
        ("action", regorus::Value::from(event.action.as_str())),
        ("service", regorus::Value::from(event.service.as_str())),
        ("resource", opt_str(event.resource.as_deref())),
        ("source_ip", opt_str(event.source_ip.as_deref())),
        ("account", regorus::Value::from(event.account.as_str())),
    ]);
    object([
        ("event", fields),
        ("raw", to_rego(&event.raw)),
        ("context", context_rego(ctx)),
    ])
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::{EventKind, Source, TenantId};

    #[test]
    fn inputs_built_directly_match_their_json_form() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 1).unwrap();
        let ctx = PolicyContext {
            protection_level: ProtectionLevel::RequireApproval,
            ..PolicyContext::neutral(now)
        };
        let event = Event {
            event_id: "e-1".into(),
            tenant_id: TenantId::parse("acme").unwrap(),
            source: Source::Kafka,
            kind: EventKind::Cloudtrail,
            event_time: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
            principal: "arn:aws:iam::1:user/alice".into(),
            action: "ConsoleLogin".into(),
            service: "signin.amazonaws.com".into(),
            resource: None,
            source_ip: Some("203.0.113.9".into()),
            account: "1".into(),
            raw: json!({"eventName": "ConsoleLogin", "n": [1, 2.5]}),
        };
        let context = json!({
            "protection_level": ctx.protection_level,
            "anomaly_score": ctx.anomaly_score,
            "principal_trust": ctx.principal_trust,
            "time": "2026-11-22T10:00:01.000Z",
        });
        let mut want = event_document(&event);
        want["context"] = context.clone();
        assert_eq!(event_input(&event, &ctx), regorus::Value::from(want));

        let caller = raw(r#"{"user": "bob", "n": [1, -2, 2.5, 18446744073709551615],
                            "context": {"protection_level": "permissive"}}"#);
        assert_eq!(
            with_context(Some(&caller), &ctx).unwrap(),
            regorus::Value::from(json!({
                "user": "bob", "n": [1, -2, 2.5, u64::MAX], "context": context
            }))
        );
        assert_eq!(
            with_context(None, &ctx).unwrap(),
            regorus::Value::from(json!({ "context": context }))
        );
        assert_eq!(
            with_context(Some(&raw("[1]")), &ctx).unwrap(),
            regorus::Value::from(json!([1]))
        );
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn input_json_cannot_hold_is_refused_with_the_reason() {
        let ctx = PolicyContext::neutral(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
        // Well-formed JSON text, but a number no float holds: refused, not turned into infinity.
        let err = with_context(Some(&raw(r#"{"n": 1e400}"#)), &ctx).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Input(m) if m.contains("out of range")),
            "{err}"
        );
    }

    #[test]
    fn the_event_name_is_read_from_the_raw_record() {
        let ctx = PolicyContext::neutral(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
        let input = |text: &str| with_context(Some(&raw(text)), &ctx).unwrap();
        let named = input(r#"{"raw": {"eventName": "ConsoleLogin"}}"#);
        assert_eq!(event_name(&named), Some("ConsoleLogin"));
        for unnamed in [r#"{"raw": {"eventName": 7}}"#, r#"{"raw": []}"#, "{}", "[]"] {
            assert_eq!(event_name(&input(unnamed)), None, "{unnamed}");
        }
    }
}
