//! The features of a CloudTrail record (docs/anomaly-models.md, "Features").

use chrono::Timelike;
use serde_json::Value;

use super::{address_class, client_family, Behaviour, FeatureKind, FeatureSpec, RawFeatures};
use crate::Event;

pub const SCHEMA: &[FeatureSpec] = &[
    FeatureSpec::categorical("event_name", "eventName"),
    FeatureSpec::categorical("event_source", "eventSource"),
    FeatureSpec::categorical("identity_type", "userIdentity.type"),
    FeatureSpec::categorical("error_code", "errorCode, or none"),
    FeatureSpec::categorical("region", "awsRegion"),
    FeatureSpec::categorical(
        "client_family",
        "userAgent's family: console, aws-cli, boto, aws-sdk, terraform, browser, …",
    ),
    FeatureSpec::categorical(
        "address_class",
        "sourceIPAddress's class: private, public-v4, aws-service, …",
    ),
    FeatureSpec::numeric("hour_of_day", "eventTime's hour, UTC"),
    FeatureSpec::numeric(
        "read_only",
        "1 for a read (readOnly, or a Get/List/Describe/Head call)",
    ),
    FeatureSpec::numeric("mfa", "1 if the session was MFA-authenticated"),
    FeatureSpec::numeric(
        "new_api_for_principal",
        "1 the first time this principal makes this call",
    ),
    FeatureSpec::numeric(
        "new_address_for_principal",
        "1 the first time this principal calls from this address",
    ),
    FeatureSpec::numeric(
        "new_client_for_principal",
        "1 the first time this principal uses this client family",
    ),
    FeatureSpec::numeric(
        "rate_vs_own",
        "this principal's events in the current five minutes over its usual count",
    ),
];

/// What the principal's history needs from a record: its client family.
pub fn client_of(event: &Event) -> &'static str {
    client_family(event.raw.get("userAgent").and_then(Value::as_str))
}

pub fn extract(event: &Event, behaviour: &Behaviour) -> RawFeatures {
    let raw = &event.raw;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("none").to_owned();
    let identity = raw.get("userIdentity");
    let read_only = match raw.get("readOnly").and_then(Value::as_bool) {
        Some(r) => r,
        None => ["Get", "List", "Describe", "Head"]
            .iter()
            .any(|p| event.action.starts_with(p)),
    };
    let mfa = identity
        .and_then(|i| i.pointer("/sessionContext/attributes/mfaAuthenticated"))
        .is_some_and(|v| v == "true" || v == true);
    let flag = |b: bool| f64::from(u8::from(b));
    let row = RawFeatures {
        categorical: vec![
            event.action.clone(),
            event.service.clone(),
            text(identity.and_then(|i| i.get("type"))),
            text(raw.get("errorCode")),
            text(raw.get("awsRegion")),
            client_of(event).to_owned(),
            address_class(event.source_ip.as_deref()).to_owned(),
        ],
        numeric: vec![
            f64::from(event.event_time.hour()),
            flag(read_only),
            flag(mfa),
            flag(behaviour.new_action),
            flag(behaviour.new_address),
            flag(behaviour.new_client),
            behaviour.rate_vs_usual,
        ],
    };
    debug_assert_eq!(
        (row.categorical.len(), row.numeric.len()),
        FeatureKind::counts(SCHEMA)
    );
    row
}
