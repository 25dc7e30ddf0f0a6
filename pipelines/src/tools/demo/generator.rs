//! Realistic traffic: mostly benign CloudTrail API calls, a few suspicious patterns (console
//! login without MFA, root use, denied calls, trail tampering, open security groups, ...), device
//! events from agents, and some malformed input that must end as dead letters.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

use super::tenants::{DemoTenant, DEMO_TENANTS};

const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yolanda",
];
const ROLES: &[&str] = &[
    "deploy-bot",
    "ci-runner",
    "data-pipeline",
    "backup-job",
    "admin-breakglass",
];
const REGIONS: &[&str] = &["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"];
const IPS: &[&str] = &[
    "198.51.100.10",
    "198.51.100.23",
    "203.0.113.5",
    "192.0.2.44",
    "203.0.113.200",
];

/// Benign calls: (eventSource, eventName, read-only).
const BENIGN: &[(&str, &str)] = &[
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "DescribeSecurityGroups"),
    ("s3.amazonaws.com", "GetObject"),
    ("s3.amazonaws.com", "PutObject"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("sts.amazonaws.com", "GetCallerIdentity"),
    ("kms.amazonaws.com", "Decrypt"),
    ("dynamodb.amazonaws.com", "Query"),
    ("lambda.amazonaws.com", "ListFunctions20150331"),
    ("monitoring.amazonaws.com", "PutMetricData"),
    ("ec2.amazonaws.com", "CreateTags"),
];

/// What one generated message is, for counting and for the test suite.
#[derive(Debug, Clone, PartialEq)]
pub enum Traffic {
    /// A Kafka message holding `records` CloudTrail records, `bad` of which must be dead letters.
    Kafka {
        key: String,
        payload: Vec<u8>,
        records: u64,
        bad: u64,
    },
    /// An MQTT message from an agent; `bad` when it must be a dead letter.
    Mqtt {
        topic: String,
        payload: Vec<u8>,
        bad: bool,
    },
}

impl Traffic {
    /// Records this message produces downstream (events + dead letters).
    pub fn units(&self) -> u64 {
        match self {
            Traffic::Kafka { records, .. } => *records,
            Traffic::Mqtt { .. } => 1,
        }
    }
}

pub struct Generator {
    rng: StdRng,
    now: DateTime<Utc>,
    mqtt_prefix: String,
}

impl Generator {
    pub fn new(seed: u64, now: DateTime<Utc>, mqtt_prefix: impl Into<String>) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            now,
            mqtt_prefix: mqtt_prefix.into(),
        }
    }

    fn tenant(&mut self) -> &'static DemoTenant {
        DEMO_TENANTS.choose(&mut self.rng).expect("demo tenants")
    }

    fn uuid(&mut self) -> String {
        Uuid::from_u128(self.rng.random()).to_string()
    }

    fn time(&mut self) -> String {
        let back = Duration::milliseconds(self.rng.random_range(0..3_600_000));
        (self.now - back).to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// One CloudTrail record; about 4% are suspicious.
    pub fn cloudtrail_record(&mut self) -> Value {
        let tenant = self.tenant();
        let account = *tenant.accounts.choose(&mut self.rng).expect("accounts");
        let user = *USERS.choose(&mut self.rng).expect("users");
        let mut identity = json!({
            "type": "IAMUser",
            "principalId": format!("AIDA{}", &account[..8]),
            "arn": format!("arn:aws:iam::{account}:user/{user}"),
            "accountId": account,
            "userName": user,
        });
        if self.rng.random_bool(0.3) {
            let role = *ROLES.choose(&mut self.rng).expect("roles");
            identity = json!({
                "type": "AssumedRole",
                "principalId": format!("AROA{}:{role}", &account[..8]),
                "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/session"),
                "accountId": account,
            });
        }
        let (mut source, mut name) = *BENIGN.choose(&mut self.rng).expect("benign");
        let mut extra = json!({});
        if self.rng.random_bool(0.04) {
            match self.rng.random_range(0..8) {
                0 => {
                    (source, name) = ("signin.amazonaws.com", "ConsoleLogin");
                    extra = json!({"additionalEventData": {"MFAUsed": "No", "LoginTo": "https://console.aws.amazon.com"},
                                   "responseElements": {"ConsoleLogin": "Success"}});
                }
                1 => {
                    identity = json!({"type": "Root", "principalId": account,
                                      "arn": format!("arn:aws:iam::{account}:root"), "accountId": account});
                    (source, name) = ("iam.amazonaws.com", "CreateAccessKey");
                }
                2 => extra = json!({"errorCode": "AccessDenied", "errorMessage": "Access Denied"}),
                3 => (source, name) = ("cloudtrail.amazonaws.com", "StopLogging"),
                4 => {
                    (source, name) = ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress");
                    extra = json!({"requestParameters": {"groupId": "sg-0a1b2c3d",
                        "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                            "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}});
                }
                5 => (source, name) = ("s3.amazonaws.com", "PutBucketPolicy"),
                6 => (source, name) = ("kms.amazonaws.com", "ScheduleKeyDeletion"),
                _ => (source, name) = ("iam.amazonaws.com", "AttachUserPolicy"),
            }
        } else if name == "AssumeRole" || self.rng.random_bool(0.02) {
            // Ordinary console logins, with MFA.
            if self.rng.random_bool(0.5) {
                (source, name) = ("signin.amazonaws.com", "ConsoleLogin");
                extra = json!({"additionalEventData": {"MFAUsed": "Yes"}, "responseElements": {"ConsoleLogin": "Success"}});
            }
        }
        let mut rec = json!({
            "eventVersion": "1.08",
            "userIdentity": identity,
            "eventTime": self.time(),
            "eventSource": source,
            "eventName": name,
            "awsRegion": *REGIONS.choose(&mut self.rng).expect("regions"),
            "sourceIPAddress": *IPS.choose(&mut self.rng).expect("ips"),
            "userAgent": "aws-cli/2.15.0 Python/3.11",
            "requestParameters": null,
            "responseElements": null,
            "eventID": self.uuid(),
            "readOnly": name.starts_with("Describe") || name.starts_with("Get") || name.starts_with("List"),
            "eventType": if source == "signin.amazonaws.com" { "AwsConsoleSignIn" } else { "AwsApiCall" },
            "recipientAccountId": account,
        });
        if let (Some(r), Value::Object(x)) = (rec.as_object_mut(), extra) {
            r.extend(x);
        }
        rec
    }

    /// One agent event, shaped like seed 001's ABAC input.
    pub fn device_event(&mut self) -> (String, Value) {
        let tenant = self.tenant();
        let agent = *tenant.agents.choose(&mut self.rng).expect("agents");
        let user = *USERS.choose(&mut self.rng).expect("users");
        let action = *[
            "read",
            "read",
            "read",
            "write",
            "write",
            "delete",
            "usb_insert",
        ]
        .choose(&mut self.rng)
        .expect("actions");
        let rtype = *["sensor_data", "customer_db", "hr_files", "build_cache"]
            .choose(&mut self.rng)
            .expect("types");
        // Mostly in-region; some cross-border reads that residency rules catch.
        let region = if self.rng.random_bool(0.9) {
            "EU"
        } else {
            *["US", "APAC"].choose(&mut self.rng).expect("r")
        };
        let topic = format!("{}/{}/agents/{agent}/events", self.mqtt_prefix, tenant.id);
        let payload = json!({
            "id": self.uuid(),
            "time": self.time(),
            "user": user,
            "action": action,
            "resource": {"type": rtype, "region": region},
            "source_ip": format!("10.20.{}.{}", self.rng.random_range(0..8), self.rng.random_range(2..250)),
        });
        (topic, payload)
    }

    /// `records` CloudTrail records as Kafka messages: mostly one per message, some log files.
    pub fn kafka_traffic(&mut self, records: u64) -> Vec<Traffic> {
        let mut out = Vec::new();
        let mut left = records;
        while left > 0 {
            let n = if self.rng.random_bool(0.15) {
                self.rng.random_range(2..=20).min(left)
            } else {
                1
            };
            let recs: Vec<Value> = (0..n).map(|_| self.cloudtrail_record()).collect();
            let key = recs[0]["recipientAccountId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let payload = if n == 1 {
                serde_json::to_vec(&recs[0])
            } else {
                serde_json::to_vec(&json!({"Records": recs}))
            }
            .expect("json");
            out.push(Traffic::Kafka {
                key,
                payload,
                records: n,
                bad: 0,
            });
            left -= n;
        }
        out
    }

    pub fn mqtt_traffic(&mut self, events: u64) -> Vec<Traffic> {
        (0..events)
            .map(|_| {
                let (topic, payload) = self.device_event();
                Traffic::Mqtt {
                    topic,
                    payload: serde_json::to_vec(&payload).expect("json"),
                    bad: false,
                }
            })
            .collect()
    }

    /// Malformed and unroutable input, tagged with `run` so each demo run's dead letters are new.
    pub fn bad_traffic(&mut self, run: &str) -> Vec<Traffic> {
        let mut unknown = self.cloudtrail_record();
        unknown["recipientAccountId"] = json!("999999999999");
        unknown["userIdentity"]["accountId"] = json!("999999999999");
        let mut no_time = self.cloudtrail_record();
        no_time.as_object_mut().expect("object").remove("eventTime");
        let file =
            json!({"Records": [self.cloudtrail_record(), no_time, self.cloudtrail_record()]});
        let agent_topic = format!("{}/acme/agents/acme-laptop-01/events", self.mqtt_prefix);
        vec![
            Traffic::Kafka {
                key: "bad".into(),
                payload: format!("{{not json, run {run}").into_bytes(),
                records: 1,
                bad: 1,
            },
            Traffic::Kafka {
                key: "bad".into(),
                payload: serde_json::to_vec(&unknown).expect("json"),
                records: 1,
                bad: 1,
            },
            Traffic::Kafka {
                key: "bad".into(),
                payload: serde_json::to_vec(&file).expect("json"),
                records: 3,
                bad: 1,
            },
            Traffic::Mqtt {
                topic: agent_topic.clone(),
                payload: format!("garbage from run {run}").into_bytes(),
                bad: true,
            },
            Traffic::Mqtt {
                topic: agent_topic,
                payload: format!(r#"{{"run": "{run}", "no_action": true}}"#).into_bytes(),
                bad: true,
            },
            Traffic::Mqtt {
                topic: format!("{}/umbrella/agents/intruder/events", self.mqtt_prefix),
                payload: format!(r#"{{"action": "read", "run": "{run}"}}"#).into_bytes(),
                bad: true,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use portcullis_engine::decode::decode_cloudtrail;
    use portcullis_engine::{TenantId, TenantRegistry};

    use super::*;

    fn registry() -> TenantRegistry {
        let mut r = TenantRegistry::new();
        for t in DEMO_TENANTS {
            for a in t.accounts {
                r.add_account(*a, TenantId::parse(t.id).unwrap());
            }
        }
        r
    }

    #[test]
    fn generated_cloudtrail_decodes_and_counts_match() {
        let mut g = Generator::new(7, Utc::now(), "portcullis");
        let traffic = g.kafka_traffic(500);
        let reg = registry();
        let mut records = 0;
        for t in &traffic {
            let Traffic::Kafka {
                payload,
                records: n,
                ..
            } = t
            else {
                panic!()
            };
            let out = decode_cloudtrail(payload, &reg, 1 << 20);
            assert_eq!(out.len() as u64, *n);
            assert!(out.iter().all(|r| r.is_ok()), "{out:?}");
            records += n;
        }
        assert_eq!(records, 500);
        assert!(traffic.len() < 500, "some messages must be log files");
    }

    #[test]
    fn bad_traffic_is_really_bad() {
        let mut g = Generator::new(1, Utc::now(), "portcullis");
        let reg = registry();
        for t in g.bad_traffic("r1") {
            if let Traffic::Kafka { payload, bad, .. } = t {
                let out = decode_cloudtrail(&payload, &reg, 1 << 20);
                assert_eq!(out.iter().filter(|r| r.is_err()).count() as u64, bad);
            }
        }
    }

    #[test]
    fn same_seed_same_traffic() {
        let now = Utc::now();
        let a = Generator::new(3, now, "p").kafka_traffic(50);
        let b = Generator::new(3, now, "p").kafka_traffic(50);
        assert_eq!(a, b);
    }
}
