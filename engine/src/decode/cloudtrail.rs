//! CloudTrail: one record per message, or a whole log file `{"Records": [...]}`, plain or
//! gzip-compressed as CloudTrail writes it to S3.

use serde_json::{Map, Value};

use super::error::json_type_name;
use super::fields::{opt_object, opt_str, parse_json, parse_time, reject_nul, req_str};
use super::gzip;
use super::{DecodeError, Rejected};
use crate::{ids, Event, EventKind, Source, TenantRegistry};

/// Decodes one Kafka message. A log file yields one result per record, so one bad record is
/// dead-lettered alone while its neighbours go through. A gzip-compressed message is inflated
/// first, to at most `max_bytes`: the limit a plain message has.
pub fn decode_cloudtrail(
    payload: &[u8],
    registry: &TenantRegistry,
    max_bytes: usize,
) -> Vec<Result<Event, Rejected>> {
    let inflated;
    let json = if gzip::is_gzip(payload) {
        match gzip::inflate(payload, max_bytes) {
            Ok(bytes) => {
                inflated = bytes;
                &inflated[..]
            }
            Err(e) => return vec![Err(Rejected::whole(payload, e))],
        }
    } else {
        payload
    };
    let root = match parse_json(json, max_bytes) {
        Ok(v) => v,
        Err(e) => return vec![Err(Rejected::whole(payload, e))],
    };
    let Value::Object(obj) = root else {
        return vec![Err(Rejected::whole(
            payload,
            DecodeError::NotAnObject(json_type_name(&root)),
        ))];
    };
    match obj.get("Records") {
        Some(Value::Array(records)) => records
            .iter()
            .enumerate()
            .map(|(i, rec)| {
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                decode_record(rec, registry).map_err(|(error, tenant_hint)| Rejected {
                    record_index: Some(index),
                    raw: serde_json::to_vec(rec).unwrap_or_default(),
                    error,
                    tenant_hint,
                })
            })
            .collect(),
        Some(other) => vec![Err(Rejected::whole(
            payload,
            DecodeError::RecordsNotArray(json_type_name(other)),
        ))],
        None if obj.contains_key("eventName") => {
            let rec = Value::Object(obj);
            vec![
                decode_record(&rec, registry).map_err(|(error, tenant_hint)| Rejected {
                    tenant_hint,
                    ..Rejected::whole(payload, error)
                }),
            ]
        }
        None => vec![Err(Rejected::whole(payload, DecodeError::NotCloudTrail))],
    }
}

type RecordError = (DecodeError, Option<String>);

fn decode_record(rec: &Value, registry: &TenantRegistry) -> Result<Event, RecordError> {
    let Value::Object(obj) = rec else {
        return Err((DecodeError::NotAnObject(json_type_name(rec)), None));
    };
    let identity = opt_object(obj, "userIdentity").map_err(|e| (e, None))?;
    let account = account_of(obj, identity).map_err(|e| (e, None))?;
    let tenant = registry
        .tenant_for_account(account)
        .cloned()
        .ok_or_else(|| (DecodeError::UnknownAccount(account.to_owned()), None))?;
    let hint = Some(tenant.to_string());
    let fail = |e: DecodeError| (e, hint.clone());

    reject_nul(rec).map_err(fail)?;
    let event_time =
        parse_time("eventTime", req_str(obj, "eventTime").map_err(fail)?).map_err(fail)?;
    let action = req_str(obj, "eventName").map_err(fail)?.to_owned();
    let service = req_str(obj, "eventSource").map_err(fail)?.to_owned();
    let event_id = match opt_str(obj, "eventID").map_err(fail)? {
        Some(id) => id.to_owned(),
        None => ids::content_hash(&serde_json::to_vec(rec).unwrap_or_default()),
    };
    let principal = identity
        .map(principal_of)
        .transpose()
        .map_err(fail)?
        .flatten();
    let source_ip = opt_str(obj, "sourceIPAddress")
        .map_err(fail)?
        .map(str::to_owned);

    Ok(Event {
        event_id,
        tenant_id: tenant,
        source: Source::Kafka,
        kind: EventKind::Cloudtrail,
        event_time,
        principal: principal.unwrap_or_else(|| "unknown".to_owned()),
        action,
        service,
        resource: first_resource_arn(obj),
        source_ip,
        account: account.to_owned(),
        raw: rec.clone(),
    })
}

/// The account that owns the event: `recipientAccountId`, else the caller's account.
fn account_of<'a>(
    obj: &'a Map<String, Value>,
    identity: Option<&'a Map<String, Value>>,
) -> Result<&'a str, DecodeError> {
    if let Some(a) = opt_str(obj, "recipientAccountId")? {
        return Ok(a);
    }
    match identity {
        Some(id) => opt_str(id, "accountId")?,
        None => None,
    }
    .ok_or(DecodeError::MissingField("recipientAccountId"))
}

/// Best human-meaningful name for the caller, in CloudTrail's own order of precision.
fn principal_of(identity: &Map<String, Value>) -> Result<Option<String>, DecodeError> {
    for field in ["arn", "userName", "principalId", "invokedBy", "type"] {
        if let Some(v) = opt_str(identity, field)? {
            return Ok(Some(v.to_owned()));
        }
    }
    Ok(None)
}

fn first_resource_arn(obj: &Map<String, Value>) -> Option<String> {
    obj.get("resources")?
        .as_array()?
        .iter()
        .find_map(|r| r.get("ARN")?.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::TenantId;

    const LIMIT: usize = 1 << 20;

    fn registry() -> TenantRegistry {
        let mut r = TenantRegistry::new();
        r.add_account("111122223333", TenantId::parse("acme").unwrap());
        r
    }

    fn console_login() -> Value {
        json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice",
                             "accountId": "111122223333", "userName": "alice"},
            "eventTime": "2026-11-20T10:00:00Z",
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "sourceIPAddress": "203.0.113.7",
            "additionalEventData": {"MFAUsed": "No"},
            "eventID": "0b7f1c2e-aaaa-bbbb-cccc-000000000001",
            "recipientAccountId": "111122223333",
            "resources": [{"ARN": "arn:aws:iam::111122223333:user/alice", "type": "AWS::IAM::User"}]
        })
    }

    fn bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    #[test]
    fn decodes_a_single_record() {
        let out = decode_cloudtrail(&bytes(&console_login()), &registry(), LIMIT);
        assert_eq!(out.len(), 1);
        let e = out[0].as_ref().unwrap();
        assert_eq!(e.event_id, "0b7f1c2e-aaaa-bbbb-cccc-000000000001");
        assert_eq!(e.tenant_id.as_str(), "acme");
        assert_eq!(e.action, "ConsoleLogin");
        assert_eq!(e.service, "signin.amazonaws.com");
        assert_eq!(e.principal, "arn:aws:iam::111122223333:user/alice");
        assert_eq!(e.source_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(
            e.resource.as_deref(),
            Some("arn:aws:iam::111122223333:user/alice")
        );
        assert_eq!(e.event_time.to_rfc3339(), "2026-11-20T10:00:00+00:00");
        assert_eq!(e.kind, EventKind::Cloudtrail);
        assert_eq!(e.raw, console_login());
    }

    #[test]
    fn a_log_file_yields_one_result_per_record_and_isolates_the_bad_one() {
        let mut bad = console_login();
        bad.as_object_mut().unwrap().remove("eventTime");
        let mut second = console_login();
        second["eventID"] = json!("id-2");
        let file = json!({"Records": [console_login(), bad, second]});
        let out = decode_cloudtrail(&bytes(&file), &registry(), LIMIT);
        assert_eq!(out.len(), 3);
        assert!(out[0].is_ok());
        let rej = out[1].as_ref().unwrap_err();
        assert_eq!(rej.record_index, Some(1));
        assert_eq!(rej.error, DecodeError::MissingField("eventTime"));
        assert_eq!(rej.tenant_hint.as_deref(), Some("acme"));
        assert_eq!(serde_json::from_slice::<Value>(&rej.raw).unwrap(), bad);
        assert_eq!(out[2].as_ref().unwrap().event_id, "id-2");
    }

    #[test]
    fn empty_log_file_yields_nothing() {
        assert!(decode_cloudtrail(br#"{"Records": []}"#, &registry(), LIMIT).is_empty());
    }

    #[test]
    fn falls_back_to_user_identity_account_and_content_hash_id() {
        let mut rec = console_login();
        let o = rec.as_object_mut().unwrap();
        o.remove("recipientAccountId");
        o.remove("eventID");
        let out = decode_cloudtrail(&bytes(&rec), &registry(), LIMIT);
        let e = out[0].as_ref().unwrap();
        assert_eq!(e.tenant_id.as_str(), "acme");
        assert_eq!(
            e.event_id.len(),
            64,
            "content hash expected, got {}",
            e.event_id
        );
        // The same record always hashes to the same id.
        let again = decode_cloudtrail(&bytes(&rec), &registry(), LIMIT);
        assert_eq!(again[0].as_ref().unwrap().event_id, e.event_id);
    }

    fn only_error(payload: &[u8]) -> DecodeError {
        let mut out = decode_cloudtrail(payload, &registry(), LIMIT);
        assert_eq!(out.len(), 1);
        out.remove(0).unwrap_err().error
    }

    #[test]
    fn malformed_input_is_refused_with_a_reason() {
        assert!(matches!(
            only_error(b"{not json"),
            DecodeError::InvalidJson(_)
        ));
        assert!(matches!(
            only_error(&[0xff, 0xfe]),
            DecodeError::InvalidJson(_)
        ));
        assert_eq!(only_error(b"[1,2]"), DecodeError::NotAnObject("an array"));
        assert_eq!(only_error(b"{\"hello\": 1}"), DecodeError::NotCloudTrail);
        assert_eq!(
            only_error(b"{\"Records\": 5}"),
            DecodeError::RecordsNotArray("a number")
        );

        let mut rec = console_login();
        rec["eventName"] = json!(42);
        assert_eq!(
            only_error(&bytes(&rec)),
            DecodeError::WrongType {
                field: "eventName",
                expected: "a string",
                found: "a number"
            }
        );
        let mut rec = console_login();
        rec["eventTime"] = json!("yesterday");
        assert!(matches!(
            only_error(&bytes(&rec)),
            DecodeError::BadTime { .. }
        ));
        let mut rec = console_login();
        rec["recipientAccountId"] = json!("999999999999");
        assert_eq!(
            only_error(&bytes(&rec)),
            DecodeError::UnknownAccount("999999999999".into())
        );
        let mut rec = console_login();
        rec["userAgent"] = json!("evil\u{0}agent");
        assert_eq!(only_error(&bytes(&rec)), DecodeError::ContainsNul);
    }

    #[test]
    fn a_gzip_log_file_decodes_as_the_plain_one_and_stays_bounded() {
        use std::io::Write;
        let mut late = console_login();
        late["eventID"] = json!("e-2");
        // As CloudTrail Lake and Athena write times: no zone, a space, taken as UTC.
        late["eventTime"] = json!("2024-01-01 00:00:00.000");
        let file = bytes(&json!({"Records": [console_login(), late]}));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&file).unwrap();
        let packed = enc.finish().unwrap();
        let out = decode_cloudtrail(&packed, &registry(), LIMIT);
        assert_eq!(out.len(), 2);
        let second = out[1].as_ref().unwrap();
        assert_eq!(second.event_time.to_rfc3339(), "2024-01-01T00:00:00+00:00");
        assert_eq!(
            decode_cloudtrail(&file, &registry(), LIMIT)[0],
            out[0],
            "compressed or not, the same events"
        );
        // The limit applies to the inflated size, as to a plain message.
        assert_eq!(
            only_error_with(&packed, file.len() - 1),
            DecodeError::InflatedTooLarge {
                limit: file.len() - 1
            }
        );
        assert!(matches!(
            only_error(&packed[..packed.len() / 2]),
            DecodeError::BadGzip(_)
        ));
        for bad in ["2024-01-01", "2024-13-01 00:00:00", "01/01/2024 00:00:00"] {
            let mut rec = console_login();
            rec["eventTime"] = json!(bad);
            assert!(
                matches!(only_error(&bytes(&rec)), DecodeError::BadTime { .. }),
                "{bad}"
            );
        }
    }

    fn only_error_with(payload: &[u8], limit: usize) -> DecodeError {
        let mut out = decode_cloudtrail(payload, &registry(), limit);
        assert_eq!(out.len(), 1);
        out.remove(0).unwrap_err().error
    }

    #[test]
    fn oversized_payload_is_refused() {
        let payload = bytes(&console_login());
        let out = decode_cloudtrail(&payload, &registry(), 10);
        assert_eq!(
            out[0].as_ref().unwrap_err().error,
            DecodeError::TooLarge {
                size: payload.len(),
                limit: 10
            }
        );
    }
}
