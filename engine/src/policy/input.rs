//! The document a policy sees as `input`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::rego_value::{object, opt_str, to_rego};
pub use crate::protection::ProtectionLevel;
use crate::Event;

/// What the engine knows besides the event itself; policies read it as `input.context`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyContext {
    /// The protection level of the unit the decision falls in (seed 002, docs/protection.md);
    /// `Permissive` when no configured unit covers it.
    pub protection_level: ProtectionLevel,
    /// That unit's load, ρ = λ/μ (0 when no unit covers the decision).
    pub rho: f64,
    /// That unit's name.
    pub protection_unit: Option<std::sync::Arc<str>>,
    /// Anomaly score in (0, 1] from the tenant's model for the event's scope; 0 when no model
    /// scored it (none trained yet, or the decision API, which has no event).
    pub anomaly_score: f64,
    /// The trust, from 0 to 100, of the event's principal (CloudTrail) or agent (devices) once
    /// the event is counted (docs/anomaly-models.md, "Trust scores"); 100 when no model scored
    /// it, and in the decision API.
    pub principal_trust: f64,
    /// External trust signals that last about the event's principal or agent, or the query's
    /// `input.principal`, and about the decision's protection unit (docs/signals.md); those
    /// about the principal or agent have already lowered `principal_trust`.
    pub signals: std::sync::Arc<[crate::signals::ActiveSignal]>,
    /// When the decision is being made.
    pub now: DateTime<Utc>,
}

impl PolicyContext {
    /// Puts a unit's protection into the context, or none: permissive.
    pub fn set_protection(&mut self, protection: Option<crate::protection::UnitProtection>) {
        match protection {
            Some(p) => {
                self.protection_level = p.level;
                self.rho = p.rho;
                self.protection_unit = Some(p.unit);
            }
            None => {
                self.protection_level = ProtectionLevel::Permissive;
                self.rho = 0.0;
                self.protection_unit = None;
            }
        }
    }

    pub fn neutral(now: DateTime<Utc>) -> Self {
        Self {
            protection_level: ProtectionLevel::Permissive,
            rho: 0.0,
            protection_unit: None,
            anomaly_score: 0.0,
            principal_trust: 100.0,
            signals: std::sync::Arc::from([]),
            now,
        }
    }
}

/// A decision API caller's input with the engine's `context` set on it. The caller cannot supply
/// its own `context`: protection level and trust are the engine's to say. A missing input
/// becomes `{"context": …}`; a non-object input is passed as it is (there is nowhere to put it).
pub(crate) fn with_context(input: Option<&Value>, ctx: &PolicyContext) -> regorus::Value {
    match input {
        None => object([("context", context_rego(ctx))]),
        Some(Value::Object(o)) => object(
            o.iter()
                .filter(|(k, _)| k.as_str() != "context")
                .map(|(k, v)| (k.as_str(), to_rego(v)))
                .chain([("context", context_rego(ctx))]),
        ),
        Some(other) => to_rego(other),
    }
}

fn context_rego(ctx: &PolicyContext) -> regorus::Value {
    object([
        (
            "protection_level",
            regorus::Value::from(ctx.protection_level.as_str()),
        ),
        // Infinite (work and no service) is given as a large number: JSON has no infinity.
        ("rho", regorus::Value::from(finite_rho(ctx.rho))),
        (
            "protection_unit",
            ctx.protection_unit
                .as_deref()
                .map_or(regorus::Value::Null, regorus::Value::from),
        ),
        ("anomaly_score", regorus::Value::from(ctx.anomaly_score)),
        ("principal_trust", regorus::Value::from(ctx.principal_trust)),
        (
            "signals",
            regorus::Value::from(
                ctx.signals
                    .iter()
                    .map(|s| {
                        object([
                            ("about", regorus::Value::from(s.about)),
                            ("kind", regorus::Value::from(s.kind.as_str())),
                            ("severity", regorus::Value::from(s.severity.as_str())),
                            ("source", regorus::Value::from(s.source.as_str())),
                            (
                                "expires_at",
                                regorus::Value::from(
                                    s.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                                ),
                            ),
                        ])
                    })
                    .collect::<Vec<_>>(),
            ),
        ),
        (
            "time",
            regorus::Value::from(ctx.now.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ),
    ])
}

/// ρ as policy reads it: finite, at most 1e9.
fn finite_rho(rho: f64) -> f64 {
    if rho.is_finite() {
        rho.clamp(0.0, 1e9)
    } else {
        1e9
    }
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
            rho: f64::INFINITY,
            protection_unit: Some("iam".into()),
            signals: std::sync::Arc::from([crate::signals::ActiveSignal {
                about: "principal",
                kind: "leaked_credentials".into(),
                severity: crate::signals::Severity::High,
                source: "guardduty".into(),
                expires_at: Utc.with_ymd_and_hms(2026, 11, 22, 11, 0, 0).unwrap(),
            }]),
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
            "rho": 1e9,
            "protection_unit": "iam",
            "anomaly_score": ctx.anomaly_score,
            "principal_trust": ctx.principal_trust,
            "signals": [{"about": "principal", "kind": "leaked_credentials", "severity": "high", "source": "guardduty",
                         "expires_at": "2026-11-22T11:00:00Z"}],
            "time": "2026-11-22T10:00:01.000Z",
        });
        let mut want = event_document(&event);
        want["context"] = context.clone();
        assert_eq!(event_input(&event, &ctx), regorus::Value::from(want));

        let caller = json!({"user": "bob", "context": {"protection_level": "permissive"}});
        assert_eq!(
            with_context(Some(&caller), &ctx),
            regorus::Value::from(json!({"user": "bob", "context": context}))
        );
        assert_eq!(
            with_context(None, &ctx),
            regorus::Value::from(json!({ "context": context }))
        );
        assert_eq!(
            with_context(Some(&json!([1])), &ctx),
            regorus::Value::from(json!([1]))
        );
    }
}
