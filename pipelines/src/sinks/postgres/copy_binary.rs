//! Rows in PostgreSQL's binary COPY format (`COPY … FROM STDIN WITH (FORMAT binary)`): the
//! cheapest way to hand Postgres a batch, for us and for it. Nothing is escaped or formatted as
//! text (a JSON document is written once, as `jsonb`'s version byte and its text), and Postgres
//! parses no timestamps, booleans or numbers. The engine's sink COPYs events and decisions this
//! way; `bench engine`'s ceiling COPYs the same encoding straight into `events`.
//!
//! The format: a signature and two 32-bit zeros, then per row a 16-bit field count and per field
//! a 32-bit byte length (-1 for NULL) and the bytes, then a 16-bit -1. Numbers are big-endian.

use chrono::{DateTime, Utc};
use portcullis_engine::{Decision, Event};
use serde_json::Value as Json;

/// Columns of `events` in the order [`events`] writes them.
pub const EVENT_COLUMNS: &str = "tenant_id, event_id, event_time, source, kind, account, \
     principal, action, service, resource, source_ip, raw";

/// Columns of `decisions` in the order [`decisions`] writes them.
pub const DECISION_COLUMNS: &str = "decision_id, tenant_id, event_id, event_time, rule_path, \
     allowed, result, bundle_revision, eval_micros, anomaly_score, anomaly_model_version";

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// 2000-01-01 00:00 UTC in microseconds since the Unix epoch.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A value this encoding cannot carry, so the rows holding it cannot be stored as they are.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode a row for Postgres: {0}")]
pub struct EncodeError(String);

/// The events as one binary COPY stream, in [`EVENT_COLUMNS`] order. An event given with its
/// record's JSON text (written once already, for its receipt) is stored with that text.
pub fn events<'a>(
    events: impl IntoIterator<Item = (&'a Event, Option<&'a [u8]>)>,
) -> Result<Vec<u8>, EncodeError> {
    let events = events.into_iter();
    let mut out = Encoder::new(events.size_hint().0 * 1024);
    for (e, raw) in events {
        out.row(12);
        out.text(e.tenant_id.as_str());
        out.text(&e.event_id);
        out.timestamptz(&e.event_time)?;
        out.text(e.source.as_str());
        out.text(e.kind.as_str());
        out.text(&e.account);
        out.text(&e.principal);
        out.text(&e.action);
        out.text(&e.service);
        out.opt_text(e.resource.as_deref());
        out.opt_text(e.source_ip.as_deref());
        match raw {
            Some(text) => out.jsonb_text(text),
            None => out.jsonb(&e.raw)?,
        }
    }
    Ok(out.finish())
}

/// The decisions as one binary COPY stream, in [`DECISION_COLUMNS`] order.
pub fn decisions<'a>(
    decisions: impl IntoIterator<Item = &'a Decision>,
) -> Result<Vec<u8>, EncodeError> {
    let decisions = decisions.into_iter();
    let mut out = Encoder::new(decisions.size_hint().0 * 256);
    for d in decisions {
        out.row(11);
        out.field(d.decision_id.as_bytes());
        out.text(d.tenant_id.as_str());
        out.text(&d.event_id);
        out.timestamptz(&d.event_time)?;
        out.text(&d.rule_path);
        out.field(&[u8::from(d.allowed)]);
        // An undefined rule is stored as SQL NULL, not JSON null.
        if d.result.is_null() {
            out.null();
        } else {
            out.jsonb(&d.result)?;
        }
        out.text(&d.bundle_revision);
        out.field(
            &i32::try_from(d.eval_micros)
                .unwrap_or(i32::MAX)
                .to_be_bytes(),
        );
        match d.anomaly_score {
            Some(score) => out.field(&score.to_bits().to_be_bytes()),
            None => out.null(),
        }
        match d.anomaly_model_version {
            Some(version) => out.field(&version.to_be_bytes()),
            None => out.null(),
        }
    }
    Ok(out.finish())
}

/// Rows in the binary COPY format, field by field: for the tables above, and for any other
/// writer that COPYs (receipts, `evidence::append`).
pub(crate) struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub(crate) fn new(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + 32);
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
        buf.extend_from_slice(&0i32.to_be_bytes()); // no header extension
        Self { buf }
    }

    pub(crate) fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    pub(crate) fn field(&mut self, bytes: &[u8]) {
        // Fields of the rows above are far below 2 GiB (payloads are capped well below).
        self.buf
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    pub(crate) fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    pub(crate) fn text(&mut self, s: &str) {
        self.field(s.as_bytes());
    }

    pub(crate) fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    /// Microseconds since 2000-01-01 00:00 UTC, Postgres's epoch; a fraction of a microsecond
    /// is dropped toward the earlier time, as the text formats round it. Postgres refuses a
    /// time outside its range (22008), like any content it refuses.
    pub(crate) fn timestamptz(&mut self, t: &DateTime<Utc>) -> Result<(), EncodeError> {
        let micros = t
            .timestamp_micros()
            .checked_sub(POSTGRES_EPOCH_MICROS)
            .ok_or_else(|| EncodeError(format!("time {t} is out of range")))?;
        self.field(&micros.to_be_bytes());
        Ok(())
    }

    /// `jsonb`'s binary input: the format version (1), then the document as JSON text, written
    /// straight into the stream.
    pub(crate) fn jsonb(&mut self, value: &Json) -> Result<(), EncodeError> {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.push(1);
        serde_json::to_writer(&mut self.buf, value).map_err(|e| EncodeError(e.to_string()))?;
        let len = (self.buf.len() - at - 4) as i32;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// `jsonb`'s binary input from a document already written as JSON text.
    pub(crate) fn jsonb_text(&mut self, text: &[u8]) {
        self.buf
            .extend_from_slice(&(text.len() as i32 + 1).to_be_bytes());
        self.buf.push(1);
        self.buf.extend_from_slice(text);
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_row_is_laid_out_field_by_field() {
        let d = Decision {
            decision_id: uuid::Uuid::from_u128(1),
            event_id: "e1".into(),
            event_time: "2000-01-01T00:00:01.5Z".parse().unwrap(),
            tenant_id: "acme".parse().unwrap(),
            rule_path: "p".into(),
            allowed: true,
            result: Json::Null,
            bundle_revision: "r".into(),
            policy_digest: "sha256:00".into(),
            eval_micros: u64::MAX,
            anomaly_score: Some(0.75),
            anomaly_model_version: None,
            protection_level: None,
            findings: Vec::new(),
            resource_change: None,
        };
        let bytes = decisions([&d]).unwrap();
        let mut want = SIGNATURE.to_vec();
        want.extend([0u8; 8]);
        want.extend(11i16.to_be_bytes());
        let mut field = |b: &[u8]| {
            want.extend((b.len() as i32).to_be_bytes());
            want.extend(b);
        };
        field(&1u128.to_be_bytes());
        field(b"acme");
        field(b"e1");
        field(&1_500_000i64.to_be_bytes());
        field(b"p");
        field(&[1]);
        want.extend((-1i32).to_be_bytes()); // an undefined result: NULL
        let mut field = |b: &[u8]| {
            want.extend((b.len() as i32).to_be_bytes());
            want.extend(b);
        };
        field(b"r");
        field(&i32::MAX.to_be_bytes());
        field(&0.75f64.to_bits().to_be_bytes());
        want.extend((-1i32).to_be_bytes()); // no model version: NULL
        want.extend((-1i16).to_be_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn times_count_microseconds_from_2000_rounding_down() {
        let mut e = Encoder::new(0);
        let before: DateTime<Utc> = "1999-12-31T23:59:59.9999995Z".parse().unwrap();
        e.timestamptz(&before).unwrap();
        let field = &e.buf[SIGNATURE.len() + 8..];
        assert_eq!(
            &field[4..12],
            &(-1i64).to_be_bytes(),
            "not truncated toward 2000"
        );
    }

    #[test]
    fn a_document_written_before_is_stored_as_if_written_here() {
        let doc = serde_json::json!({"b": [1, "x"], "a": null});
        let (mut once, mut here) = (Encoder::new(0), Encoder::new(0));
        once.jsonb_text(&serde_json::to_vec(&doc).unwrap());
        here.jsonb(&doc).unwrap();
        assert_eq!(once.finish(), here.finish());
    }

    #[test]
    fn a_json_document_is_its_version_byte_and_its_text() {
        let mut e = Encoder::new(0);
        e.jsonb(&serde_json::json!({"a": "say \"hi\""})).unwrap();
        let field = &e.buf[SIGNATURE.len() + 8..];
        let text = br#"{"a":"say \"hi\""}"#;
        assert_eq!(&field[..4], &(text.len() as i32 + 1).to_be_bytes());
        assert_eq!(field[4], 1);
        assert_eq!(&field[5..], text);
    }
}
