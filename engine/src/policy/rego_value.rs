//! Building the engine's own values directly from JSON. regorus's `From<serde_json::Value>`
//! takes the value by ownership and goes through serde; for every event that meant a deep clone
//! and a (de)serialization pass, a third of an evaluation's time on the CloudTrail pack.

use std::collections::BTreeMap;

use regorus::Value;
use serde_json::Value as Json;

pub(crate) fn to_rego(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) => Value::from(a.iter().map(to_rego).collect::<Vec<_>>()),
        Json::Object(o) => object(o.iter().map(|(k, v)| (k.as_str(), to_rego(v)))),
    }
}

/// An object from `(key, value)` pairs.
pub(crate) fn object<'a>(fields: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::from(
        fields
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// `Some(s)` as a string, `None` as null.
pub(crate) fn opt_str(s: Option<&str>) -> Value {
    s.map_or(Value::Null, Value::from)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builds_what_regorus_would_build_from_json() {
        let doc = json!({
            "s": "x", "n": 1, "neg": -7, "big": u64::MAX, "f": 1.5, "whole_f": 2.0,
            "b": true, "null": null, "a": [1, "two", {"three": [3]}], "o": {"nested": {}},
            "unicode": "\u{e9}\u{1F600}", "empty": [], "e": ""
        });
        assert_eq!(to_rego(&doc), Value::from(doc.clone()));
    }
}
