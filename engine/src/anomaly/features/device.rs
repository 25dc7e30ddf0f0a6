//! The features of an agent's event (docs/anomaly-models.md, "Features").

use chrono::Timelike;
use serde_json::Value;

use super::{address_class, Behaviour, FeatureKind, FeatureSpec, RawFeatures};
use crate::Event;

pub const SCHEMA: &[FeatureSpec] = &[
    FeatureSpec::categorical("action", "action"),
    FeatureSpec::categorical(
        "resource_type",
        "resource.type, or a resource string's prefix before ':' or '/', or none",
    ),
    FeatureSpec::categorical("address_class", "source_ip's class: private, public-v4, …"),
    FeatureSpec::numeric("hour_of_day", "time's hour, UTC"),
    FeatureSpec::numeric(
        "new_action_for_principal",
        "1 the first time this user does this action",
    ),
    FeatureSpec::numeric(
        "new_address_for_principal",
        "1 the first time this user acts from this address",
    ),
    FeatureSpec::numeric(
        "rate_vs_own",
        "this user's events in the current five minutes over its usual count",
    ),
];

fn resource_type(raw: &Value) -> String {
    match raw.get("resource") {
        Some(Value::Object(r)) => r
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_owned(),
        Some(Value::String(s)) => s
            .split([':', '/'])
            .next()
            .filter(|p| !p.is_empty() && p.len() < s.len())
            .unwrap_or("plain")
            .to_owned(),
        _ => "none".to_owned(),
    }
}

pub fn extract(event: &Event, behaviour: &Behaviour) -> RawFeatures {
    let flag = |b: bool| f64::from(u8::from(b));
    let row = RawFeatures {
        categorical: vec![
            event.action.clone(),
            resource_type(&event.raw),
            address_class(event.source_ip.as_deref()).to_owned(),
        ],
        numeric: vec![
            f64::from(event.event_time.hour()),
            flag(behaviour.new_action),
            flag(behaviour.new_address),
            behaviour.rate_vs_usual,
        ],
    };
    debug_assert_eq!(
        (row.categorical.len(), row.numeric.len()),
        FeatureKind::counts(SCHEMA)
    );
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_types() {
        assert_eq!(
            resource_type(&json!({"resource": {"type": "file", "id": "x"}})),
            "file"
        );
        assert_eq!(resource_type(&json!({"resource": "usb:1234"})), "usb");
        assert_eq!(resource_type(&json!({"resource": "s3/bucket/key"})), "s3");
        assert_eq!(resource_type(&json!({"resource": "report.pdf"})), "plain");
        assert_eq!(resource_type(&json!({})), "none");
    }
}
