//! Features of events, documented and deterministic (docs/anomaly-models.md, "Features"): what
//! each scope's model looks at, categorical values kept as text until a model encodes them
//! (`FrequencyEncoder`), and each principal's behaviour (`BehaviourBook`).

mod address_class;
mod behaviour;
mod client_family;
mod cloudtrail;
mod device;
mod frequency_encoder;

pub use address_class::address_class;
pub use behaviour::{Behaviour, BehaviourBook, PastEvent, PrincipalHistory};
pub use client_family::client_family;
pub use frequency_encoder::FrequencyEncoder;

use serde::{Deserialize, Serialize};

use super::ModelScope;
use crate::Event;

/// The version of the feature definitions below: a model records the one it was trained with,
/// and is not used on features of another.
pub const FEATURES_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Categorical,
    Numeric,
}

impl FeatureKind {
    /// (categorical, numeric) features in a schema.
    pub fn counts(schema: &[FeatureSpec]) -> (usize, usize) {
        let categorical = schema
            .iter()
            .filter(|f| f.kind == FeatureKind::Categorical)
            .count();
        (categorical, schema.len() - categorical)
    }
}

/// One feature: its name, kind and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeatureSpec {
    pub name: &'static str,
    pub kind: FeatureKind,
    pub meaning: &'static str,
}

impl FeatureSpec {
    const fn categorical(name: &'static str, meaning: &'static str) -> Self {
        FeatureSpec {
            name,
            kind: FeatureKind::Categorical,
            meaning,
        }
    }

    const fn numeric(name: &'static str, meaning: &'static str) -> Self {
        FeatureSpec {
            name,
            kind: FeatureKind::Numeric,
            meaning,
        }
    }
}

/// An event's features before encoding: categorical values as text, in schema order, then the
/// numeric ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawFeatures {
    pub categorical: Vec<String>,
    pub numeric: Vec<f64>,
}

/// The features a scope's model looks at, categorical first.
pub fn schema(scope: ModelScope) -> &'static [FeatureSpec] {
    match scope {
        ModelScope::Cloudtrail => cloudtrail::SCHEMA,
        ModelScope::Device => device::SCHEMA,
    }
}

/// An event's features, with `book` (its model's principals) asked about, and updated with,
/// this event. Events must come in the order they are judged.
pub fn extract(event: &Event, book: &mut BehaviourBook) -> RawFeatures {
    let scope = ModelScope::of(event.kind);
    let client = match scope {
        ModelScope::Cloudtrail => Some(cloudtrail::client_of(event)),
        ModelScope::Device => None,
    };
    let behaviour = book.observe(
        &event.principal,
        event.event_time,
        &event.action,
        event.source_ip.as_deref(),
        client,
    );
    match scope {
        ModelScope::Cloudtrail => cloudtrail::extract(event, &behaviour),
        ModelScope::Device => device::extract(event, &behaviour),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_cloudtrail;
    use crate::{TenantId, TenantRegistry};
    use serde_json::json;

    fn registry() -> TenantRegistry {
        let mut r = TenantRegistry::new();
        r.add_account("111111111111", TenantId::parse("acme").unwrap());
        r
    }

    fn record(id: &str, name: &str, ip: &str, ua: &str) -> Event {
        let rec = json!({
            "eventVersion": "1.08", "eventID": id, "eventTime": "2026-11-30T03:04:05Z",
            "eventSource": "cloudtrail.amazonaws.com", "eventName": name, "awsRegion": "eu-west-1",
            "sourceIPAddress": ip, "userAgent": ua, "recipientAccountId": "111111111111",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111111111111:user/alice",
                "accountId": "111111111111",
                "sessionContext": {"attributes": {"mfaAuthenticated": "true"}}},
        });
        let out = decode_cloudtrail(&serde_json::to_vec(&rec).unwrap(), &registry(), 1 << 20);
        out.into_iter().next().unwrap().unwrap()
    }

    #[test]
    fn a_cloudtrail_record_in_schema_order() {
        let mut book = BehaviourBook::default();
        let e = record(
            "e1",
            "StopLogging",
            "203.0.113.7",
            "aws-cli/2.15.0 Python/3.11",
        );
        let f = extract(&e, &mut book);
        assert_eq!(
            f.categorical,
            [
                "StopLogging",
                "cloudtrail.amazonaws.com",
                "IAMUser",
                "none",
                "eu-west-1",
                "aws-cli",
                "public-v4"
            ]
        );
        // 03:04 UTC, a write, MFA, and everything new for alice on her first event.
        assert_eq!(f.numeric, [3.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(
            (f.categorical.len(), f.numeric.len()),
            FeatureKind::counts(schema(ModelScope::Cloudtrail))
        );
        // The same call again from the same place is no longer new.
        let again = extract(
            &record("e2", "StopLogging", "203.0.113.7", "aws-cli/2.16"),
            &mut book,
        );
        assert_eq!(&again.numeric[3..6], &[0.0, 0.0, 0.0]);
        // The same features for the same event and history: deterministic.
        let mut other = BehaviourBook::default();
        assert_eq!(extract(&e, &mut other), f);
    }

    #[test]
    fn schemas_name_every_feature_once() {
        for scope in ModelScope::ALL {
            let names: std::collections::HashSet<_> =
                schema(scope).iter().map(|f| f.name).collect();
            assert_eq!(names.len(), schema(scope).len());
            // Categorical first, as RawFeatures and the encoder lay them out.
            let (c, _) = FeatureKind::counts(schema(scope));
            assert!(schema(scope)[..c]
                .iter()
                .all(|f| f.kind == FeatureKind::Categorical));
        }
    }
}
