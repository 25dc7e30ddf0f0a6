//! The body of a decision API request, `{"input": …}`, read from untrusted bytes.

use serde_json::Value;

use crate::decode::{contains_nul, parse_untrusted};

#[derive(Debug, thiserror::Error)]
pub enum QueryBodyError {
    #[error("request body is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("request body contains U+0000 (NUL), which cannot be logged")]
    Nul,
    #[error("request body must be a JSON object such as {{\"input\": {{...}}}}, not {0}")]
    NotAnObject(&'static str),
}

/// The request's `input`: `None` when the body is empty (or blank) or has no `input` key.
/// The input is logged, and Postgres stores no NUL: one is refused here rather than fail the log.
pub fn query_input(body: &[u8]) -> Result<Option<Value>, QueryBodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let doc = parse_untrusted(body).map_err(QueryBodyError::NotJson)?;
    if contains_nul(&doc) {
        return Err(QueryBodyError::Nul);
    }
    match doc {
        Value::Object(mut o) => Ok(o.remove("input")),
        other => Err(QueryBodyError::NotAnObject(kind(&other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_give_their_input_or_say_what_is_wrong() {
        assert_eq!(query_input(b"").unwrap(), None);
        assert_eq!(query_input(b" \n").unwrap(), None);
        assert_eq!(query_input(b"{}").unwrap(), None);
        assert_eq!(
            query_input(br#"{"input": {"a": 1}, "other": 2}"#).unwrap(),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            query_input(br#"{"input": null}"#).unwrap(),
            Some(Value::Null)
        );
        assert!(matches!(
            query_input(b"{\"input\": "),
            Err(QueryBodyError::NotJson(_))
        ));
        assert!(matches!(
            query_input(br#"{"input": "a\u0000b"}"#),
            Err(QueryBodyError::Nul)
        ));
        assert!(matches!(
            query_input(b"[1, 2]"),
            Err(QueryBodyError::NotAnObject("an array"))
        ));
    }
}
