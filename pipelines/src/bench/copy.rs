//! COPY of events as CSV: the ceiling the pipeline is measured against.

use chrono::SecondsFormat;
use portcullis_engine::Event;
use sqlx::postgres::PgPoolCopyExt;
use sqlx::PgPool;

const COPY_EVENTS: &str =
    "COPY events (tenant_id, event_id, event_time, source, kind, account, principal, \
     action, service, resource, source_ip, raw) FROM STDIN WITH (FORMAT csv)";

/// Appends one CSV field: quoted, inner quotes doubled; `None` is an unquoted empty field (NULL).
fn field(out: &mut String, value: Option<&str>) {
    if let Some(v) = value {
        out.push('"');
        for c in v.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    }
}

pub fn csv_rows(events: &[Event]) -> String {
    let mut out = String::with_capacity(events.len() * 1024);
    for e in events {
        let time = e.event_time.to_rfc3339_opts(SecondsFormat::Micros, true);
        let raw = e.raw.to_string();
        let fields = [
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
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(&mut out, *f);
        }
        out.push('\n');
    }
    out
}

/// COPYs `events` into the events table in one statement; returns the rows copied.
pub async fn copy_events(pool: &PgPool, events: &[Event]) -> Result<u64, sqlx::Error> {
    let mut copy = pool.copy_in_raw(COPY_EVENTS).await?;
    if let Err(e) = copy.send(csv_rows(events).into_bytes()).await {
        // The connection must not be left mid-COPY.
        let _ = copy.abort(e.to_string()).await;
        return Err(e);
    }
    copy.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_fields_and_writes_null_as_empty() {
        let mut s = String::new();
        field(&mut s, Some(r#"say "hi", ok"#));
        s.push(',');
        field(&mut s, None);
        s.push(',');
        field(&mut s, Some(""));
        assert_eq!(s, r#""say ""hi"", ok",,"""#);
    }
}
