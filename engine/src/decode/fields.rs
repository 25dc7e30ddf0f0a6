//! Typed field access on JSON objects, with errors that name the field.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::error::json_type_name;
use super::DecodeError;

/// Longest value accepted in a normalized text column.
pub(crate) const MAX_FIELD_LEN: usize = 2048;

pub(crate) fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, DecodeError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() > MAX_FIELD_LEN => Err(DecodeError::FieldTooLong {
            field,
            len: s.len(),
            max: MAX_FIELD_LEN,
        }),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(DecodeError::WrongType {
            field,
            expected: "a string",
            found: json_type_name(other),
        }),
    }
}

pub(crate) fn req_str<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, DecodeError> {
    opt_str(obj, field)?.ok_or(DecodeError::MissingField(field))
}

pub(crate) fn opt_object<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a Map<String, Value>>, DecodeError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(DecodeError::WrongType {
            field,
            expected: "an object",
            found: json_type_name(other),
        }),
    }
}

/// RFC 3339, or the zone-less `2024-01-01 00:00:00.000` (a `T` allowed for the space) that
/// CloudTrail Lake, Athena and several exporters write, taken as UTC as CloudTrail's times are.
pub(crate) fn parse_time(field: &'static str, value: &str) -> Result<DateTime<Utc>, DecodeError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f"))
                .map(|t| t.and_utc())
        })
        .map_err(|_| DecodeError::BadTime {
            field,
            value: value.chars().take(64).collect(),
        })
}

/// Postgres text and jsonb cannot hold U+0000; refuse such records up front so that one bad
/// string cannot fail a whole batch later.
pub(crate) fn reject_nul(v: &Value) -> Result<(), DecodeError> {
    let bad = match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => return items.iter().try_for_each(reject_nul),
        Value::Object(m) => {
            if m.keys().any(|k| k.contains('\0')) {
                true
            } else {
                return m.values().try_for_each(reject_nul);
            }
        }
        _ => false,
    };
    if bad {
        Err(DecodeError::ContainsNul)
    } else {
        Ok(())
    }
}

pub(crate) fn parse_json(raw: &[u8], limit: usize) -> Result<Value, DecodeError> {
    if raw.len() > limit {
        return Err(DecodeError::TooLarge {
            size: raw.len(),
            limit,
        });
    }
    super::parse_untrusted(raw).map_err(|e| DecodeError::InvalidJson(e.to_string()))
}
