//! A receipt as it is written: its bytes, their leaf hash, and the columns analysts filter on.

use chrono::{DateTime, Utc};
use portcullis_engine::evidence::{input_digest, leaf_hash, Receipt};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::path::RowSet;

#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptRow {
    pub tenant_id: String,
    pub decision_id: Uuid,
    pub kind: &'static str,
    pub subject: String,
    pub outcome: &'static str,
    /// The receipt's exact bytes (JSON, so UTF-8).
    pub body: String,
    pub leaf_hash: [u8; 32],
}

impl ReceiptRow {
    pub fn of(receipt: &Receipt) -> Self {
        let bytes = receipt.to_bytes();
        let hash = leaf_hash(&bytes).0;
        Self {
            tenant_id: receipt.tenant.clone(),
            decision_id: receipt.decision_id,
            kind: receipt.kind.as_str(),
            subject: receipt.subject.clone(),
            outcome: receipt.outcome.as_str(),
            body: String::from_utf8(bytes).expect("serde_json writes UTF-8"),
            leaf_hash: hash,
        }
    }
}

/// Gives every judged event of `sets` its receipt, stamped `now`. Done once per batch, before
/// the write is tried, so a retried write stores the same receipts. Each event's record is
/// written as JSON once: its digest goes in the receipt, its text to the events table.
pub fn add_receipts(sets: &mut [RowSet], now: DateTime<Utc>) {
    for set in sets {
        set.raw_json = set
            .events
            .iter()
            // A `Value` always serializes.
            .map(|e| serde_json::to_vec(&e.raw).unwrap_or_default())
            .collect();
        set.receipts = set
            .events
            .iter()
            .zip(&set.decisions)
            .zip(&set.raw_json)
            .map(|((event, decision), raw)| {
                let digest = input_digest(raw);
                ReceiptRow::of(&Receipt::of_event(event, decision, digest, now))
            })
            .collect();
    }
}

/// A stored receipt's text as JSON that keeps its exact bytes. Text that is not exactly one
/// JSON value (altered: not JSON, or with white space around it, which JSON readers drop)
/// is given as a JSON string instead, whose bytes then do not hash to the log's leaf: an
/// export never makes an altered receipt look like the one signed.
pub fn exact_receipt(body: String) -> Box<RawValue> {
    let exact =
        serde_json::from_str::<&RawValue>(&body).is_ok_and(|raw| raw.get().len() == body.len());
    if exact {
        RawValue::from_string(body).expect("checked above")
    } else {
        serde_json::value::to_raw_value(&body).expect("a string is JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::exact_receipt;

    #[test]
    fn only_exact_json_is_kept_as_json() {
        assert_eq!(exact_receipt(r#"{"a":1}"#.into()).get(), r#"{"a":1}"#);
        assert_eq!(exact_receipt(r#"{"a":1} "#.into()).get(), r#""{\"a\":1} ""#);
        assert_eq!(exact_receipt("not json".into()).get(), r#""not json""#);
    }
}
