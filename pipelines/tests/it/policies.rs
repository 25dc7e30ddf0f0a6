//! The policies shipped in `policies/tenants` compile and judge representative events correctly.

use std::path::Path;

use chrono::Utc;
use portcullis::policy_service::bundle_files::FsBundleSource;
use portcullis::policy_service::pack_files::FsPackSource;
use portcullis_actors::BundleSource;
use portcullis_engine::decode::{decode_cloudtrail, decode_device};
use portcullis_engine::policy::PolicyContext;
use portcullis_engine::{Event, TenantId, TenantPolicy, TenantRegistry};
use serde_json::{json, Value};

fn policy(tenant: &str) -> TenantPolicy {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tenants");
    let packs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/packs");
    let bundle = FsBundleSource::new(dir)
        .with_packs(FsPackSource::new(packs))
        .load(&TenantId::parse(tenant).unwrap())
        .unwrap();
    TenantPolicy::compile(&bundle, "decision").unwrap()
}

fn registry() -> TenantRegistry {
    let mut r = TenantRegistry::new();
    r.add_account("111111111111", TenantId::parse("acme").unwrap());
    r.add_account("222222222222", TenantId::parse("globex").unwrap());
    r
}

fn ct(account: &str, fields: Value) -> Event {
    let mut rec = json!({
        "eventTime": "2026-11-22T10:00:00Z", "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances",
        "eventType": "AwsApiCall", "recipientAccountId": account,
        "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::{account}:user/bob"), "accountId": account},
    });
    rec.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    decode_cloudtrail(&serde_json::to_vec(&rec).unwrap(), &registry(), 1 << 20)
        .remove(0)
        .unwrap()
}

fn device(tenant: &str, mut payload: Value) -> Event {
    let topic = format!("portcullis/{tenant}/agents/a1/events");
    payload["time"] = json!("2026-11-22T10:00:00Z");
    decode_device(
        "portcullis",
        &topic,
        &serde_json::to_vec(&payload).unwrap(),
        &registry(),
        1 << 16,
    )
    .unwrap()
}

fn reasons(tenant: &str, e: &Event) -> Vec<String> {
    let d = policy(tenant)
        .evaluate(e, &PolicyContext::neutral(Utc::now()))
        .unwrap();
    let reasons: Vec<String> = serde_json::from_value(d.result["reasons"].clone()).unwrap();
    assert_eq!(
        d.allowed,
        reasons.is_empty(),
        "allow must mean no reasons: {reasons:?}"
    );
    reasons
}

#[test]
fn every_shipped_bundle_compiles_with_its_revision() {
    for (t, revision) in [
        ("acme", "acme-2026.12.2"),
        ("globex", "globex-2026.11.1"),
        ("initech", "initech-2026.11.1"),
    ] {
        assert_eq!(policy(t).revision(), revision);
    }
}

#[test]
fn cis_cloudtrail_detections() {
    let a = "111111111111";
    assert!(
        reasons("acme", &ct(a, json!({}))).is_empty(),
        "benign call is allowed"
    );
    let cases = [
        (
            json!({"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
                "additionalEventData": {"MFAUsed": "No"}}),
            "console login without MFA (CIS 4.2)",
        ),
        (
            json!({"errorCode": "Client.UnauthorizedOperation"}),
            "unauthorized API call (CIS 4.1)",
        ),
        (
            json!({"errorCode": "AccessDenied"}),
            "unauthorized API call (CIS 4.1)",
        ),
        (
            json!({"userIdentity": {"type": "Root", "arn": format!("arn:aws:iam::{a}:root"), "accountId": a}}),
            "root account used (CIS 4.3)",
        ),
        (
            json!({"eventSource": "iam.amazonaws.com", "eventName": "AttachUserPolicy"}),
            "IAM policy changed (CIS 4.4)",
        ),
        (
            json!({"eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging"}),
            "CloudTrail configuration changed (CIS 4.5)",
        ),
        (
            json!({"eventSource": "kms.amazonaws.com", "eventName": "ScheduleKeyDeletion"}),
            "KMS key disabled or scheduled for deletion (CIS 4.7)",
        ),
        (
            json!({"eventSource": "s3.amazonaws.com", "eventName": "PutBucketPolicy"}),
            "S3 bucket policy changed (CIS 4.8)",
        ),
        (
            json!({"eventName": "AuthorizeSecurityGroupIngress", "requestParameters": {"ipPermissions": {"items": [
            {"ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}, {"cidrIp": "0.0.0.0/0"}]}}]}}}),
            "security group opened to the internet (CIS 4.10)",
        ),
    ];
    for (fields, want) in cases {
        assert_eq!(
            reasons("acme", &ct(a, fields.clone())),
            vec![want.to_owned()],
            "{fields}"
        );
    }
    // With MFA, a console login is fine; a root call made by an AWS service is not root use.
    let mfa = json!({"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "additionalEventData": {"MFAUsed": "Yes"}});
    assert!(reasons("acme", &ct(a, mfa)).is_empty());
    let svc = json!({"userIdentity": {"type": "Root", "invokedBy": "cloudtrail.amazonaws.com", "accountId": a}});
    assert!(reasons("acme", &ct(a, svc)).is_empty());
    let narrow = json!({"eventName": "AuthorizeSecurityGroupIngress", "requestParameters": {"ipPermissions": {"items": [
        {"ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}}]}}});
    assert!(reasons("acme", &ct(a, narrow)).is_empty());
}

#[test]
fn device_abac_follows_each_tenants_data() {
    let read_us =
        json!({"user": "alice", "action": "read", "resource": {"type": "crm", "region": "US"}});
    assert_eq!(
        reasons("acme", &device("acme", read_us.clone())),
        vec!["data residency: US is not an allowed region"]
    );
    assert!(
        reasons("globex", &device("globex", read_us)).is_empty(),
        "globex allows US"
    );
    let usb = json!({"user": "alice", "action": "usb_insert"});
    assert_eq!(
        reasons("acme", &device("acme", usb.clone())),
        vec!["removable media is blocked"]
    );
    assert!(reasons("globex", &device("globex", usb)).is_empty());
    // An export nothing refuses waits for an approver; one something refuses is refused.
    let export = json!({"user": "alice", "action": "export", "resource": {"type": "hr_files", "region": "EU"}});
    let judged = policy("acme")
        .evaluate(&device("acme", export), &PolicyContext::neutral(Utc::now()))
        .unwrap();
    assert_eq!(
        judged.result,
        json!({"allow": false, "require_approval": true,
               "reasons": ["alice exports hr_files from a device: an approver must agree"]})
    );
    let export_us = json!({"user": "alice", "action": "export", "resource": {"type": "hr_files", "region": "US"}});
    assert_eq!(
        reasons("acme", &device("acme", export_us)),
        vec!["data residency: US is not an allowed region"]
    );
    let write =
        json!({"user": "zed", "action": "write", "resource": {"type": "db", "region": "EU"}});
    assert_eq!(
        reasons("acme", &device("acme", write)),
        vec!["zed may not write db"]
    );
}

#[test]
fn acme_refuses_what_its_anomaly_model_finds_unusual() {
    let event = ct("111111111111", json!({}));
    let judged = |score: f64| {
        let mut ctx = PolicyContext::neutral(Utc::now());
        ctx.anomaly_score = score;
        let d = policy("acme").evaluate(&event, &ctx).unwrap();
        serde_json::from_value::<Vec<String>>(d.result["reasons"].clone()).unwrap()
    };
    let unusual = "unusual activity for this tenant (anomaly score 0.75 or more)".to_string();
    assert_eq!(judged(0.0), Vec::<String>::new(), "no model yet");
    assert_eq!(judged(0.55), Vec::<String>::new(), "usual");
    assert_eq!(judged(0.75), vec![unusual.clone()]);
    assert_eq!(judged(0.93), vec![unusual]);
}

#[test]
fn acme_steps_up_and_then_refuses_changes_as_trust_falls() {
    let judged = |event: &Event, trust: f64| {
        let mut ctx = PolicyContext::neutral(Utc::now());
        ctx.principal_trust = trust;
        let d = policy("acme").evaluate(event, &ctx).unwrap();
        serde_json::from_value::<Vec<String>>(d.result["reasons"].clone()).unwrap()
    };
    let change = ct("111111111111", json!({"eventName": "RunInstances"}));
    let read = ct("111111111111", json!({"eventName": "DescribeInstances"}));
    let with_mfa = ct(
        "111111111111",
        json!({"eventName": "RunInstances", "userIdentity": {"type": "IAMUser",
            "arn": "arn:aws:iam::111111111111:user/bob", "accountId": "111111111111",
            "sessionContext": {"attributes": {"mfaAuthenticated": "true"}}}}),
    );
    // Trusted and watched principals change what they like.
    for trust in [100.0, 80.0, 50.0] {
        assert_eq!(judged(&change, trust), Vec::<String>::new(), "{trust}");
    }
    // Low trust: a change needs MFA; reads go on.
    assert_eq!(
        judged(&change, 49.0),
        vec!["low trust (49): changes need an MFA-authenticated session"]
    );
    assert_eq!(judged(&with_mfa, 49.0), Vec::<String>::new());
    assert_eq!(judged(&read, 20.0), Vec::<String>::new());
    // Untrusted: no changes, with or without MFA; still reads.
    for e in [&change, &with_mfa] {
        assert_eq!(
            judged(e, 19.0),
            vec!["untrusted (19): changes are refused until trust comes back"]
        );
    }
    assert_eq!(judged(&read, 0.0), Vec::<String>::new());
    // An untrusted agent's device writes are refused; its reads are not.
    let write = device(
        "acme",
        json!({"user": "amy", "action": "write", "resource": {"type": "db", "region": "EU"}}),
    );
    let open = device(
        "acme",
        json!({"user": "amy", "action": "open", "resource": {"type": "db", "region": "EU"}}),
    );
    assert!(judged(&write, 10.0)
        .contains(&"untrusted (10): changes are refused until trust comes back".to_string()));
    assert_eq!(judged(&open, 10.0), Vec::<String>::new());
}
