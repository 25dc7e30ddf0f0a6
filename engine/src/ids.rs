//! Stable identifiers, so that a redelivered message produces the same rows.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Namespace for Portcullis' name-based (v5) UUIDs.
const NAMESPACE: Uuid = Uuid::from_u128(0x6f0c_52d1_7a3e_4c59_9b1f_2d8e_5a40_c7e3);

/// Hex SHA-256 of `bytes`, used as an event id when the producer supplied none.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Short digest for display (bundle revisions, etc.).
pub fn short_digest(bytes: &[u8]) -> String {
    let full = content_hash(bytes);
    format!("sha256:{}", &full[..16])
}

/// Deterministic decision id: the same event judged by the same rule of the same tenant always
/// gets the same id, so a re-evaluation after redelivery collides instead of duplicating. The
/// event time is part of it because it is part of the event's key.
pub fn decision_id(
    tenant: &str,
    event_id: &str,
    event_time: DateTime<Utc>,
    rule_path: &str,
) -> Uuid {
    let time = event_time.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let name = format!("{tenant}\u{1f}{event_id}\u{1f}{time}\u{1f}{rule_path}");
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

/// A compliance violation's id: one per (tenant, pack, control, resource), ever, so that every
/// engine and every redelivery name the same violation, and a recurrence re-opens it.
pub fn violation_id(
    tenant: &str,
    pack: &str,
    control: &str,
    resource_type: &str,
    resource_id: &str,
) -> Uuid {
    let name = format!(
        "violation\u{1f}{tenant}\u{1f}{pack}\u{1f}{control}\u{1f}{resource_type}\u{1f}{resource_id}"
    );
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_id_is_stable_and_distinct() {
        let t = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 22, 10, 0, 0).unwrap();
        let rule = "data.tenants.acme.decision";
        let a = decision_id("acme", "e1", t, rule);
        assert_eq!(a, decision_id("acme", "e1", t, rule));
        assert_ne!(a, decision_id("acme", "e2", t, rule));
        assert_ne!(a, decision_id("globex", "e1", t, rule));
        assert_ne!(
            a,
            decision_id("acme", "e1", t + chrono::Duration::seconds(1), rule)
        );
        assert_ne!(a, decision_id("acme", "e1", t, "data.tenants.acme.other"));
    }

    #[test]
    fn content_hash_is_sha256_hex() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(short_digest(b"abc"), "sha256:ba7816bf8f01cfea");
    }
}
