//! Rows as CSV for `COPY … FROM STDIN`: the fastest way to hand Postgres a batch. The writer
//! COPYs into per-connection staging tables; the benchmark's ceiling COPYs straight into `events`.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use portcullis_engine::{Decision, Event};

/// Columns of `events` in the order [`events_csv`] writes them.
pub const EVENT_COLUMNS: &str = "tenant_id, event_id, event_time, source, kind, account, \
     principal, action, service, resource, source_ip, raw";

/// Columns of `decisions` in the order [`decisions_csv`] writes them.
pub const DECISION_COLUMNS: &str = "decision_id, tenant_id, event_id, event_time, rule_path, \
     allowed, result, bundle_revision, eval_micros";

/// Appends one CSV field: quoted, inner quotes doubled; `None` is an unquoted empty field, which
/// COPY reads as NULL (a quoted empty field is an empty string).
fn field(out: &mut String, value: Option<&str>) {
    if let Some(v) = value {
        out.reserve(v.len() + 2);
        out.push('"');
        for (i, part) in v.split('"').enumerate() {
            if i > 0 {
                out.push_str("\"\"");
            }
            out.push_str(part);
        }
        out.push('"');
    }
}

fn row<const N: usize>(out: &mut String, fields: [Option<&str>; N]) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f);
    }
    out.push('\n');
}

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn events_csv<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<u8> {
    let events = events.into_iter();
    let mut out = String::with_capacity(events.size_hint().0 * 1024);
    for e in events {
        let time = timestamp(&e.event_time);
        let raw = e.raw.to_string();
        row(
            &mut out,
            [
                Some(e.tenant_id.as_str()),
                Some(e.event_id.as_str()),
                Some(time.as_str()),
                Some(e.source.as_str()),
                Some(e.kind.as_str()),
                Some(e.account.as_str()),
                Some(e.principal.as_str()),
                Some(e.action.as_str()),
                Some(e.service.as_str()),
                e.resource.as_deref(),
                e.source_ip.as_deref(),
                Some(raw.as_str()),
            ],
        );
    }
    out.into_bytes()
}

pub fn decisions_csv<'a>(decisions: impl IntoIterator<Item = &'a Decision>) -> Vec<u8> {
    let decisions = decisions.into_iter();
    let mut out = String::with_capacity(decisions.size_hint().0 * 256);
    let mut id = String::with_capacity(36);
    let mut micros = String::with_capacity(10);
    for d in decisions {
        id.clear();
        let _ = write!(id, "{}", d.decision_id);
        micros.clear();
        let _ = write!(
            micros,
            "{}",
            i32::try_from(d.eval_micros).unwrap_or(i32::MAX)
        );
        let time = timestamp(&d.event_time);
        // An undefined rule is stored as SQL NULL, not JSON null.
        let result = (!d.result.is_null()).then(|| d.result.to_string());
        row(
            &mut out,
            [
                Some(id.as_str()),
                Some(d.tenant_id.as_str()),
                Some(d.event_id.as_str()),
                Some(time.as_str()),
                Some(d.rule_path.as_str()),
                Some(if d.allowed { "t" } else { "f" }),
                result.as_deref(),
                Some(d.bundle_revision.as_str()),
                Some(micros.as_str()),
            ],
        );
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_fields_and_writes_null_as_empty() {
        let mut s = String::new();
        row(
            &mut s,
            [Some(r#"say "hi", ok"#), None, Some(""), Some("a\nb")],
        );
        assert_eq!(s, "\"say \"\"hi\"\", ok\",,\"\",\"a\nb\"\n");
    }

    #[test]
    fn one_line_per_row_with_every_column() {
        let d = Decision {
            decision_id: uuid::Uuid::nil(),
            event_id: "e1".into(),
            event_time: "2026-11-02T10:00:00.5Z".parse().unwrap(),
            tenant_id: "acme".parse().unwrap(),
            rule_path: "data.tenants.acme.decision".into(),
            allowed: false,
            result: serde_json::Value::Null,
            bundle_revision: "r1".into(),
            eval_micros: u64::MAX,
        };
        let csv = String::from_utf8(decisions_csv([&d])).unwrap();
        assert_eq!(
            csv,
            "\"00000000-0000-0000-0000-000000000000\",\"acme\",\"e1\",\
             \"2026-11-02T10:00:00.500000Z\",\"data.tenants.acme.decision\",\"f\",,\"r1\",\
             \"2147483647\"\n"
        );
        // No field here holds a comma, so commas count the columns.
        assert_eq!(
            csv.trim_end().split(',').count(),
            DECISION_COLUMNS.split(',').count()
        );
    }
}
