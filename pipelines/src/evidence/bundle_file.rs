//! Reading a bundle file for [`BundleCheck`]: the header line, then each receipt line, with
//! one line buffer reused throughout. A line that is not UTF-8, or longer than any receipt
//! could be, is a finding, not the end of the check.

use std::io::{BufRead, Read};
use std::time::{Duration, Instant};

use portcullis_engine::evidence::{BundleCheck, BundleHeader, Report};

use super::EvidenceStoreError;

/// Longest line read: a header with many checkpoints, or a receipt, is far below it.
const MAX_LINE: u64 = 64 * 1024 * 1024;

/// Checks the bundle `reader` holds, trusting only `trusted` keys when given. `diff_budget`
/// bounds the search for what changed, from the moment it starts.
pub fn check_bundle(
    reader: &mut impl BufRead,
    trusted: Option<&[String]>,
    diff_budget: Option<Duration>,
) -> Result<Report, EvidenceStoreError> {
    let mut line = Vec::new();
    let header = match next_line(reader, &mut line)? {
        Line::Text(text) => serde_json::from_str::<BundleHeader>(text).map_err(|e| {
            EvidenceStoreError::Refused(format!(
                "the first line is not an evidence bundle header: {e}"
            ))
        })?,
        Line::End => return Err(EvidenceStoreError::Refused("the bundle is empty".into())),
        Line::Unreadable(why) => {
            return Err(EvidenceStoreError::Refused(format!(
                "the first line is not an evidence bundle header: {why}"
            )))
        }
    };
    let mut check = BundleCheck::new(&header, trusted)?;
    let mut line_no = 1u64;
    loop {
        line_no += 1;
        match next_line(reader, &mut line)? {
            Line::End => break,
            Line::Text("") => {}
            Line::Text(text) => check.line(line_no, text),
            Line::Unreadable(why) => check.unreadable(line_no, &why),
        }
    }
    Ok(check.finish(diff_budget.map(|b| Instant::now() + b)))
}

enum Line<'a> {
    Text(&'a str),
    Unreadable(String),
    End,
}

fn next_line<'a>(reader: &mut impl BufRead, buf: &'a mut Vec<u8>) -> std::io::Result<Line<'a>> {
    buf.clear();
    let read = reader.by_ref().take(MAX_LINE).read_until(b'\n', buf)?;
    if read == 0 {
        return Ok(Line::End);
    }
    if buf.last() != Some(&b'\n') && read as u64 == MAX_LINE {
        // Skip the rest of the line without holding it.
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let n = reader.by_ref().take(1 << 20).read_until(b'\n', &mut rest)?;
            if n == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
        return Ok(Line::Unreadable(format!("longer than {MAX_LINE} bytes")));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    match std::str::from_utf8(buf) {
        Ok(text) => Ok(Line::Text(text)),
        Err(e) => Ok(Line::Unreadable(format!("not UTF-8 ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use portcullis_engine::evidence::{Finding, BUNDLE_FORMAT};

    use super::*;

    #[test]
    fn unreadable_and_garbled_lines_are_findings_not_failures() {
        let header = format!(
            r#"{{"format":"{BUNDLE_FORMAT}","tenant":"acme","origin":"o/receipts/acme","first":0,"end":0,"left":[],"keys":[],"checkpoints":[],"exported_at":"2026-12-02T00:00:00Z"}}"#
        );
        let mut bytes = header.into_bytes();
        bytes.extend_from_slice(b"\n\xff\xfe not utf-8\n{\"index\": \"x\"}\n\n");
        let report = check_bundle(&mut &bytes[..], None, None).unwrap();
        let malformed = report
            .findings
            .iter()
            .filter(|f| matches!(f, Finding::Malformed { .. }))
            .count();
        assert_eq!(malformed, 2, "{:?}", report.findings);
        assert!(check_bundle(&mut &b"not a header\n"[..], None, None).is_err());
        assert!(check_bundle(&mut &b""[..], None, None).is_err());
    }
}
