//! JSON from outside the engine, read literally.
//!
//! serde_json's own `Value` deserializer gives some object keys a private meaning when a crate
//! in the build turns on its `raw_value` feature (sqlx does): `{"$serde_json::private::RawValue":
//! "<text>"}` becomes whatever `<text>` parses to, with a fresh nesting limit. For bytes a caller
//! or an agent sent, every key is data: this reader builds the same `Value` with every key kept.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as one JSON document (trailing whitespace only), keys taken literally.
/// serde_json's nesting limit (128) still applies.
pub fn parse_untrusted(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let Literal(value) = Literal::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct Literal(Value);

impl<'de> Deserialize<'de> for Literal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LiteralVisitor)
    }
}

struct LiteralVisitor;

impl<'de> Visitor<'de> for LiteralVisitor {
    type Value = Literal;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Literal, E> {
        Ok(Literal(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Literal, E> {
        Ok(Literal(Value::Number(n.into())))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Literal, E> {
        Ok(Literal(Value::Number(n.into())))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Literal, E> {
        // As serde_json does: a JSON text cannot hold a non-finite number anyway.
        Ok(Literal(
            Number::from_f64(n).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E>(self, s: &str) -> Result<Literal, E> {
        Ok(Literal(Value::String(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Literal, E> {
        Ok(Literal(Value::String(s)))
    }

    fn visit_unit<E>(self) -> Result<Literal, E> {
        Ok(Literal(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Literal, E> {
        Ok(Literal(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Literal, D::Error> {
        Literal::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Literal, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(Literal(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Literal(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Literal, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Literal(v) = map.next_value()?;
            fields.insert(key, v);
        }
        Ok(Literal(Value::Object(fields)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_serde_json_treats_as_private_are_kept_as_data() {
        for key in [
            "$serde_json::private::RawValue",
            "$serde_json::private::Number",
        ] {
            let text = format!(r#"{{"user": {{"{key}": "\"admin\""}}}}"#);
            let value = parse_untrusted(text.as_bytes()).unwrap();
            assert_eq!(value, json!({"user": {key: "\"admin\""}}), "{key}");
        }
        // Spelled with an escape, it is the same key.
        let value = parse_untrusted(br#"{"\u0024serde_json::private::RawValue": "1"}"#).unwrap();
        assert_eq!(value, json!({"$serde_json::private::RawValue": "1"}));
    }

    #[test]
    fn ordinary_documents_read_as_serde_json_reads_them() {
        let text = r#" {"s": "x\u00e9\ud83d\ude00", "n": [0, -7, 2.5, 18446744073709551615, 1e3],
                        "b": [true, false, null], "o": {"a": {}}, "dup": 1, "dup": 2} "#;
        assert_eq!(
            parse_untrusted(text.as_bytes()).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        for bad in [&b"{\"a\": 1} x"[..], b"", b"{\"a\": 1e400}", b"[1,]"] {
            assert!(
                parse_untrusted(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let err = parse_untrusted(deep.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }
}
