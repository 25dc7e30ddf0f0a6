//! Decoding raw messages into normalized [`Event`](crate::Event)s, or into a reason they were refused.

mod cloudtrail;
mod device;
mod error;
pub(crate) mod fields;

pub use cloudtrail::decode_cloudtrail;
pub use device::{decode_device, device_topic_filter, DeviceTopic};
pub use error::DecodeError;

/// A record that could not be decoded, with what is needed to dead-letter it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Index inside a CloudTrail log file when only that record was bad; `None` for the whole message.
    pub record_index: Option<u32>,
    /// The bytes to keep: the bad record alone when the rest of the file was fine.
    pub raw: Vec<u8>,
    pub error: DecodeError,
    /// The tenant the record seemed to belong to, if that much was readable.
    pub tenant_hint: Option<String>,
}

impl Rejected {
    pub(crate) fn whole(raw: &[u8], error: DecodeError) -> Self {
        Self {
            record_index: None,
            raw: raw.to_vec(),
            error,
            tenant_hint: None,
        }
    }
}

/// Whether a JSON value holds U+0000 anywhere (Postgres stores no NUL in text or jsonb).
pub fn contains_nul(v: &serde_json::Value) -> bool {
    fields::reject_nul(v).is_err()
}

/// Whether valid JSON text holds U+0000 anywhere, in a key or a string value. Valid JSON can
/// only spell it `\u0000`, and that backslash is an escape only if an even number of
/// backslashes comes before it (`\\u0000` is a backslash followed by the text `u0000`).
pub fn json_text_has_nul(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("u0000").map(|i| i + from) {
        let backslashes = bytes[..at]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            return true;
        }
        from = at + 5;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_found_in_json_text_as_json_reads_it() {
        for text in [
            r#"{"a": "\u0000"}"#,
            r#"{"\u0000": 1}"#,
            r#"["x\\\u0000"]"#,
            r#""u0000\u0000""#,
            r#"{"a": "\u00001"}"#,
        ] {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(contains_nul(&value), "{text}");
            assert!(json_text_has_nul(text), "{text}");
        }
        for text in [
            r#"{"a": "u0000"}"#,
            r#"{"a": "\\u0000"}"#,
            r#"{"a": "\\\\u0000"}"#,
            r#"{"a": "\u0001", "b": 0}"#,
            r#"{}"#,
            "",
        ] {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
                assert!(!contains_nul(&value), "{text}");
            }
            assert!(!json_text_has_nul(text), "{text}");
        }
    }
}
