use crate::TenantIdError;

/// Why a message or record was refused. The text is what lands in `dead_letters.reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("gzip-compressed payload inflates past the limit of {limit} bytes")]
    InflatedTooLarge { limit: usize },
    #[error("payload starts as gzip but does not inflate: {0}")]
    BadGzip(String),
    #[error("payload is not valid UTF-8 JSON: {0}")]
    InvalidJson(String),
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    #[error(
        "neither a CloudTrail record (no \"eventName\") nor a CloudTrail log file (no \"Records\")"
    )]
    NotCloudTrail,
    #[error("\"Records\" must be an array, found {0}")]
    RecordsNotArray(&'static str),
    #[error("missing required field \"{0}\"")]
    MissingField(&'static str),
    #[error("field \"{field}\" must be {expected}, found {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error("field \"{field}\" is neither an RFC 3339 timestamp nor \"YYYY-MM-DD HH:MM:SS[.fff]\" (UTC): {value:?}")]
    BadTime { field: &'static str, value: String },
    #[error("field \"{field}\" is {len} characters long; at most {max} are allowed")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("payload contains a NUL character (U+0000), which cannot be stored")]
    ContainsNul,
    #[error("AWS account {0:?} is not mapped to any tenant (add it with `portcullis tenant add`)")]
    UnknownAccount(String),
    #[error("tenant {0:?} is not registered (add it with `portcullis tenant add`)")]
    UnknownTenant(String),
    #[error("invalid tenant id in topic: {0}")]
    BadTenant(#[from] TenantIdError),
    #[error("topic {topic:?} does not match {expected:?}")]
    BadTopic { topic: String, expected: String },
    #[error("invalid agent id {0:?}: use 1-128 characters of A-Z, a-z, 0-9, '_', '-', '.', starting with a letter or digit")]
    BadAgentId(String),
}

pub(crate) fn json_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
