//! Decoding raw messages into normalized [`Event`](crate::Event)s, or into a reason they were refused.

mod cloudtrail;
mod device;
mod error;
pub(crate) mod fields;
mod gzip;
mod literal_json;

pub use cloudtrail::decode_cloudtrail;
pub use device::valid_agent_id;
pub use device::{decode_device, device_topic_filter, DeviceTopic};
pub use error::DecodeError;
pub use literal_json::parse_untrusted;

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
