//! A scan as a report: JSON (the scan itself), CSV with Prowler's columns, OCSF Detection
//! Findings (one per control, as Prowler writes them), and a printable HTML page.

use portcullis_engine::compliance::{ControlResult, ControlStatus};
use portcullis_engine::signals::Severity;
use serde_json::{json, Value};

use super::ScanRow;

/// The OCSF schema version the findings follow.
pub const OCSF_VERSION: &str = "1.1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    Csv,
    Ocsf,
    Html,
}

impl ReportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "json" => Self::Json,
            "csv" => Self::Csv,
            "ocsf" => Self::Ocsf,
            "html" => Self::Html,
            _ => return None,
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json | Self::Ocsf => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Html => "text/html; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Ocsf => "ocsf.json",
            Self::Html => "html",
        }
    }
}

/// Renders `scan` as `format`.
pub fn render(scan: &ScanRow, format: ReportFormat) -> Vec<u8> {
    match format {
        ReportFormat::Json => serde_json::to_vec_pretty(scan).unwrap_or_default(),
        ReportFormat::Csv => csv(scan),
        ReportFormat::Ocsf => serde_json::to_vec_pretty(&ocsf(scan)).unwrap_or_default(),
        ReportFormat::Html => html(scan).into_bytes(),
    }
}

fn status_extended(c: &ControlResult) -> String {
    match c.status {
        ControlStatus::Pass => "no active violation".to_owned(),
        ControlStatus::Fail => format!(
            "{} resource(s) with an active violation; {} finding(s) in the period",
            c.failing_resources, c.findings_in_period
        ),
        ControlStatus::Muted => format!("{} suppressed violation(s)", c.muted_resources),
    }
}

fn finding_uid(scan: &ScanRow, c: &ControlResult) -> String {
    format!(
        "portcullis-{}-{}-{}-{}",
        scan.tenant_id, scan.framework, c.pack, c.control_id
    )
}

/// Prowler's CSV: semicolon-separated, its column names, one row per control.
fn csv(scan: &ScanRow) -> Vec<u8> {
    let mut w = ::csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(Vec::new());
    let _ = w.write_record([
        "TIMESTAMP",
        "ACCOUNT_UID",
        "FINDING_UID",
        "PROVIDER",
        "CHECK_ID",
        "CHECK_TITLE",
        "STATUS",
        "STATUS_EXTENDED",
        "MUTED",
        "SEVERITY",
        "RESOURCE_TYPE",
        "REMEDIATION_RECOMMENDATION_TEXT",
        "COMPLIANCE",
    ]);
    for c in &scan.controls.0 {
        let _ = w.write_record([
            scan.scanned_at.to_rfc3339().as_str(),
            scan.tenant_id.as_str(),
            finding_uid(scan, c).as_str(),
            "aws",
            c.control_id.as_str(),
            c.title.as_str(),
            c.status.as_str(),
            status_extended(c).as_str(),
            if c.status == ControlStatus::Muted {
                "True"
            } else {
                "False"
            },
            c.severity.as_str(),
            c.resource_type.as_str(),
            c.remediation.as_str(),
            format!("{}: {}", scan.framework, c.requirement).as_str(),
        ]);
    }
    w.into_inner().unwrap_or_default()
}

fn severity_id(s: Severity) -> u8 {
    match s {
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// OCSF Detection Finding (class 2004), one per control, as a JSON array.
fn ocsf(scan: &ScanRow) -> Value {
    let time = scan.scanned_at.timestamp_millis();
    Value::Array(
        scan.controls
            .0
            .iter()
            .map(|c| {
                json!({
                    "activity_id": 1,
                    "activity_name": "Create",
                    "category_uid": 2,
                    "category_name": "Findings",
                    "class_uid": 2004,
                    "class_name": "Detection Finding",
                    "type_uid": 200401,
                    "type_name": "Detection Finding: Create",
                    "severity_id": severity_id(c.severity),
                    "severity": c.severity.as_str(),
                    "status_id": 1,
                    "status": "New",
                    "status_code": c.status.as_str(),
                    "status_detail": status_extended(c),
                    "time": time,
                    "finding_info": {
                        "uid": finding_uid(scan, c),
                        "title": c.title,
                        "desc": format!("{} {} ({})", scan.framework_title, c.requirement, c.pack),
                        "types": [scan.framework],
                        "created_time": time,
                    },
                    "metadata": {
                        "version": OCSF_VERSION,
                        "product": {"name": "Portcullis", "vendor_name": "Portcullis",
                                    "version": env!("CARGO_PKG_VERSION")},
                        "event_code": c.control_id,
                    },
                    "cloud": {"provider": "AWS", "account": {
                        "uid": scan.tenant_id, "name": scan.tenant_id,
                        "type_id": 10, "type": "AWS Account"}},
                    "resources": [{"type": c.resource_type, "group": {"name": c.pack}}],
                    "remediation": {"desc": c.remediation},
                    "unmapped": {
                        "compliance": {scan.framework.clone(): [c.requirement.clone()]},
                        "failing_resources": c.failing_resources,
                        "findings_in_period": c.findings_in_period,
                    },
                })
            })
            .collect(),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1} %"))
}

/// A page to print or archive: the scores, then every control.
fn html(scan: &ScanRow) -> String {
    let rows: String = scan
        .controls
        .0
        .iter()
        .map(|c| {
            format!(
                "<tr class=\"{status}\"><td>{req}</td><td>{title}<div class=\"m\">{pack} · {resource}</div></td>\
                 <td>{sev}</td><td><b>{status_up}</b><div class=\"m\">{detail}</div></td><td>{fix}</td></tr>\n",
                status = c.status.as_str().to_lowercase(),
                status_up = c.status.as_str(),
                req = escape(&c.requirement),
                title = escape(&c.title),
                pack = escape(&format!("{}@{} {}", c.pack, c.pack_version, c.control_id)),
                resource = escape(&c.resource_type),
                sev = c.severity.as_str(),
                detail = escape(&status_extended(c)),
                fix = escape(&c.remediation),
            )
        })
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>{title} · {tenant}</title>\
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#1d1f23}}table{{border-collapse:collapse;width:100%}}\
td,th{{border-bottom:1px solid #ccc;padding:6px;text-align:left;vertical-align:top}}.m{{color:#5b616e;font-size:12px}}\
tr.fail b{{color:#a3261b}}tr.pass b{{color:#1b6e3a}}tr.muted b{{color:#6b4e00}}.scores span{{margin-right:24px}}</style>\
</head><body>\n<h1>{title}</h1>\n<p class=\"m\">Tenant {tenant} · scanned {at} by {by} · findings from {from} to {to} · scan {id}</p>\n\
<p class=\"scores\"><span>Pass rate <b>{rate}</b></span><span>Severity-weighted score <b>{score}</b></span>\
<span>{passed} passed, {failed} failed, {muted} muted</span></p>\n\
<table><thead><tr><th>Requirement</th><th>Control</th><th>Severity</th><th>Status</th><th>Remediation</th></tr></thead>\n<tbody>\n{rows}</tbody></table>\n</body></html>\n",
        title = escape(&scan.framework_title),
        tenant = escape(&scan.tenant_id),
        at = scan.scanned_at.format("%Y-%m-%d %H:%M:%S UTC"),
        by = escape(&scan.requested_by),
        from = scan.period_from.format("%Y-%m-%d %H:%M UTC"),
        to = scan.period_to.format("%Y-%m-%d %H:%M UTC"),
        id = scan.scan_id,
        rate = percent(scan.pass_rate),
        score = percent(scan.score),
        passed = scan.passed,
        failed = scan.failed,
        muted = scan.muted,
    )
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use sqlx::types::Json;
    use uuid::Uuid;

    use super::*;

    fn scan() -> ScanRow {
        let control = |id: &str, status, severity| ControlResult {
            pack: "cis_aws_monitoring".into(),
            pack_version: "1.0.0".into(),
            control_id: id.into(),
            requirement: id.into(),
            title: format!("control <{id}> & co"),
            severity,
            status,
            failing_resources: if status == ControlStatus::Fail { 2 } else { 0 },
            muted_resources: 0,
            findings_in_period: 3,
            resource_type: "AWS::S3::Bucket".into(),
            remediation: "fix; it".into(),
        };
        ScanRow {
            scan_id: Uuid::nil(),
            tenant_id: "acme".into(),
            framework: "cis_aws_3.0".into(),
            framework_title: "CIS".into(),
            period_from: Utc::now(),
            period_to: Utc::now(),
            scanned_at: Utc::now(),
            requested_by: "test".into(),
            passed: 1,
            failed: 1,
            muted: 0,
            pass_rate: Some(50.0),
            score: Some(20.0),
            controls: Json(vec![
                control("4.1", ControlStatus::Fail, Severity::Critical),
                control("4.2", ControlStatus::Pass, Severity::Low),
            ]),
        }
    }

    #[test]
    fn csv_has_prowlers_columns_and_one_row_per_control() {
        let text = String::from_utf8(render(&scan(), ReportFormat::Csv)).unwrap();
        let mut r = ::csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(text.as_bytes());
        let headers = r.headers().unwrap().clone();
        for h in [
            "FINDING_UID",
            "CHECK_ID",
            "STATUS",
            "SEVERITY",
            "MUTED",
            "COMPLIANCE",
        ] {
            assert!(headers.iter().any(|x| x == h), "{h}");
        }
        let rows: Vec<_> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][6], "FAIL");
        assert_eq!(
            &rows[1][11], "fix; it",
            "a delimiter inside a field is quoted"
        );
    }

    #[test]
    fn ocsf_findings_carry_the_detection_finding_class_and_required_fields() {
        let v: Value = serde_json::from_slice(&render(&scan(), ReportFormat::Ocsf)).unwrap();
        let findings = v.as_array().unwrap();
        assert_eq!(findings.len(), 2);
        for f in findings {
            for field in [
                "activity_id",
                "category_uid",
                "class_uid",
                "type_uid",
                "severity_id",
                "time",
                "metadata",
                "finding_info",
            ] {
                assert!(f.get(field).is_some(), "{field} in {f}");
            }
            assert_eq!(f["class_uid"], 2004);
            assert_eq!(f["type_uid"], 200401);
            assert!(f["finding_info"]["uid"].is_string() && f["finding_info"]["title"].is_string());
            assert_eq!(f["metadata"]["version"], OCSF_VERSION);
        }
        assert_eq!(findings[0]["severity_id"], 5);
        assert_eq!(findings[0]["status_code"], "FAIL");
    }

    #[test]
    fn html_escapes_what_it_shows() {
        let page = String::from_utf8(render(&scan(), ReportFormat::Html)).unwrap();
        assert!(page.contains("control &lt;4.1&gt; &amp; co"));
        assert!(!page.contains("<4.1>"));
        assert!(page.contains("Pass rate <b>50.0 %</b>"));
    }
}
