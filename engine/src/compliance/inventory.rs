//! The resource inventory (seed 004's audit agent): which resource a CloudTrail change event
//! created, modified or deleted. Reads never change a resource, nor do failed calls.

use serde::Serialize;
use serde_json::Value as Json;

use super::call_succeeded;
use super::control::bounded_id;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Modified => "modified",
            Self::Deleted => "deleted",
        }
    }
}

/// A change an event made to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    /// A CloudFormation-style type: `AWS::S3::Bucket`.
    pub resource_type: &'static str,
    pub resource_id: String,
    pub change: ChangeKind,
}

/// Where each service's calls name the resource they act on: (eventSource, type, pointers
/// tried in order). The first service entry whose pointer holds a string wins.
const WHERE: &[(&str, &str, &[&str])] = &[
    (
        "s3.amazonaws.com",
        "AWS::S3::Bucket",
        &["/requestParameters/bucketName"],
    ),
    (
        "ec2.amazonaws.com",
        "AWS::EC2::SecurityGroup",
        &["/requestParameters/groupId", "/responseElements/groupId"],
    ),
    (
        "ec2.amazonaws.com",
        "AWS::EC2::NetworkAcl",
        &[
            "/requestParameters/networkAclId",
            "/responseElements/networkAcl/networkAclId",
        ],
    ),
    (
        "ec2.amazonaws.com",
        "AWS::EC2::RouteTable",
        &[
            "/requestParameters/routeTableId",
            "/responseElements/routeTable/routeTableId",
        ],
    ),
    (
        "ec2.amazonaws.com",
        "AWS::EC2::InternetGateway",
        &[
            "/requestParameters/internetGatewayId",
            "/responseElements/internetGateway/internetGatewayId",
        ],
    ),
    (
        "ec2.amazonaws.com",
        "AWS::EC2::Snapshot",
        &["/requestParameters/snapshotId"],
    ),
    (
        "ec2.amazonaws.com",
        "AWS::EC2::Image",
        &["/requestParameters/imageId"],
    ),
    (
        "ec2.amazonaws.com",
        "AWS::EC2::Volume",
        &["/requestParameters/volumeId", "/responseElements/volumeId"],
    ),
    (
        "ec2.amazonaws.com",
        "AWS::EC2::Instance",
        &[
            "/requestParameters/instanceId",
            "/requestParameters/instancesSet/items/0/instanceId",
            "/responseElements/instancesSet/items/0/instanceId",
        ],
    ),
    (
        "ec2.amazonaws.com",
        "AWS::EC2::VPC",
        &["/requestParameters/vpcId", "/responseElements/vpc/vpcId"],
    ),
    (
        "iam.amazonaws.com",
        "AWS::IAM::Policy",
        &[
            "/requestParameters/policyArn",
            "/responseElements/policy/arn",
        ],
    ),
    (
        "iam.amazonaws.com",
        "AWS::IAM::Role",
        &["/requestParameters/roleName"],
    ),
    (
        "iam.amazonaws.com",
        "AWS::IAM::Group",
        &["/requestParameters/groupName"],
    ),
    (
        "iam.amazonaws.com",
        "AWS::IAM::User",
        &["/requestParameters/userName"],
    ),
    (
        "kms.amazonaws.com",
        "AWS::KMS::Key",
        &[
            "/requestParameters/keyId",
            "/responseElements/keyMetadata/keyId",
        ],
    ),
    (
        "cloudtrail.amazonaws.com",
        "AWS::CloudTrail::Trail",
        &["/requestParameters/name", "/responseElements/trailARN"],
    ),
    (
        "config.amazonaws.com",
        "AWS::Config::ConfigurationRecorder",
        &[
            "/requestParameters/configurationRecorderName",
            "/requestParameters/configurationRecorder/name",
        ],
    ),
    (
        "guardduty.amazonaws.com",
        "AWS::GuardDuty::Detector",
        &[
            "/requestParameters/detectorId",
            "/responseElements/detectorId",
        ],
    ),
    (
        "logs.amazonaws.com",
        "AWS::Logs::LogGroup",
        &["/requestParameters/logGroupName"],
    ),
    (
        "lambda.amazonaws.com",
        "AWS::Lambda::Function",
        &[
            "/requestParameters/functionName",
            "/responseElements/functionName",
        ],
    ),
    (
        "rds.amazonaws.com",
        "AWS::RDS::DBInstance",
        &["/requestParameters/dBInstanceIdentifier"],
    ),
    (
        "rds.amazonaws.com",
        "AWS::RDS::DBSnapshot",
        &["/requestParameters/dBSnapshotIdentifier"],
    ),
    (
        "secretsmanager.amazonaws.com",
        "AWS::SecretsManager::Secret",
        &["/requestParameters/secretId", "/requestParameters/name"],
    ),
    (
        "sns.amazonaws.com",
        "AWS::SNS::Topic",
        &["/requestParameters/topicArn", "/responseElements/topicArn"],
    ),
    (
        "sqs.amazonaws.com",
        "AWS::SQS::Queue",
        &["/requestParameters/queueUrl", "/responseElements/queueUrl"],
    ),
];

/// Name prefixes of calls that only read.
const READS: &[&str] = &[
    "Get", "List", "Describe", "Head", "Lookup", "BatchGet", "Search", "Scan", "Query", "Select",
    "Check", "Validate", "Estimate", "Preview", "Test",
];

/// The change `raw` (a CloudTrail record) made to a resource; `None` for a read, a failed
/// call, or a call on a resource the inventory does not track.
pub fn resource_change(raw: &Json) -> Option<ResourceChange> {
    let name = raw.get("eventName")?.as_str()?;
    let read_only = match raw.get("readOnly") {
        Some(Json::Bool(b)) => *b,
        _ => READS.iter().any(|p| name.starts_with(p)),
    };
    // Data events (object reads and writes, function invocations) change no configuration.
    let data_event = raw.get("managementEvent") == Some(&Json::Bool(false))
        || raw.get("eventCategory").and_then(Json::as_str) == Some("Data");
    if read_only || data_event || !call_succeeded(raw) {
        return None;
    }
    let source = raw.get("eventSource")?.as_str()?;
    let (resource_type, resource_id) =
        WHERE
            .iter()
            .filter(|(s, _, _)| *s == source)
            .find_map(|(_, kind, pointers)| {
                pointers.iter().find_map(|p| match raw.pointer(p) {
                    Some(Json::String(id)) if !id.is_empty() => Some((*kind, bounded_id(id))),
                    _ => None,
                })
            })?;
    let change = if names_the_resource(name, &["Create", "Run"], resource_type) {
        ChangeKind::Created
    } else if names_the_resource(
        name,
        &["Delete", "Terminate", "Remove", "Deregister"],
        resource_type,
    ) {
        ChangeKind::Deleted
    } else {
        ChangeKind::Modified
    };
    Some(ResourceChange {
        resource_type,
        resource_id,
        change,
    })
}

/// Whether call `name` is one of `verbs` applied to the resource itself: `DeleteBucket` deletes
/// a bucket, `DeleteBucketPolicy` only changes one; `CreatePolicyVersion` changes a policy;
/// `RunInstances` creates instances. API versions some names carry (`CreateFunction20150331`)
/// are read past.
fn names_the_resource(name: &str, verbs: &[&str], resource_type: &str) -> bool {
    let Some(object) = verbs.iter().find_map(|v| name.strip_prefix(v)) else {
        return false;
    };
    let object = object.trim_end_matches(|c: char| c.is_ascii_digit());
    let noun = match resource_type.rsplit("::").next().unwrap_or_default() {
        "VPC" => "Vpc",
        other => other,
    };
    object == noun || object.strip_suffix('s') == Some(noun)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ev(name: &str, source: &str, params: Json) -> Json {
        json!({"eventName": name, "eventSource": source, "requestParameters": params})
    }

    #[test]
    fn changes_are_found_reads_and_failures_are_not() {
        let put = ev(
            "PutBucketPolicy",
            "s3.amazonaws.com",
            json!({"bucketName": "reports"}),
        );
        assert_eq!(
            resource_change(&put),
            Some(ResourceChange {
                resource_type: "AWS::S3::Bucket",
                resource_id: "reports".into(),
                change: ChangeKind::Modified
            })
        );
        let get = ev(
            "GetBucketPolicy",
            "s3.amazonaws.com",
            json!({"bucketName": "reports"}),
        );
        assert_eq!(resource_change(&get), None);
        let mut refused = put.clone();
        refused["errorCode"] = json!("AccessDenied");
        assert_eq!(resource_change(&refused), None);
        // CloudTrail's own readOnly wins over the name.
        let mut marked = put;
        marked["readOnly"] = json!(true);
        assert_eq!(resource_change(&marked), None);
        let mut object = ev(
            "PutObject",
            "s3.amazonaws.com",
            json!({"bucketName": "reports"}),
        );
        object["managementEvent"] = json!(false);
        assert_eq!(
            resource_change(&object),
            None,
            "a data event changes no configuration"
        );
        let unknown = ev("PutThing", "example.amazonaws.com", json!({"thing": "x"}));
        assert_eq!(resource_change(&unknown), None);
    }

    #[test]
    fn creation_and_deletion_are_told_from_changes_to_a_part() {
        let created = json!({"eventName": "CreateSecurityGroup", "eventSource": "ec2.amazonaws.com",
            "requestParameters": {"groupName": "web"}, "responseElements": {"groupId": "sg-1"}});
        let c = resource_change(&created).unwrap();
        assert_eq!(
            (c.resource_id.as_str(), c.change),
            ("sg-1", ChangeKind::Created)
        );
        let gone = ev(
            "DeleteBucket",
            "s3.amazonaws.com",
            json!({"bucketName": "old"}),
        );
        assert_eq!(resource_change(&gone).unwrap().change, ChangeKind::Deleted);
        let part = ev(
            "DeleteBucketPolicy",
            "s3.amazonaws.com",
            json!({"bucketName": "old"}),
        );
        assert_eq!(resource_change(&part).unwrap().change, ChangeKind::Modified);
        let vpc = ev("DeleteVpc", "ec2.amazonaws.com", json!({"vpcId": "vpc-1"}));
        assert_eq!(resource_change(&vpc).unwrap().change, ChangeKind::Deleted);
        let user = ev(
            "DeleteUser",
            "iam.amazonaws.com",
            json!({"userName": "bob"}),
        );
        assert_eq!(resource_change(&user).unwrap().change, ChangeKind::Deleted);
        let policy_of_user = ev(
            "DeleteUserPolicy",
            "iam.amazonaws.com",
            json!({"userName": "bob", "policyName": "p"}),
        );
        assert_eq!(
            resource_change(&policy_of_user).unwrap().change,
            ChangeKind::Modified
        );
        let stop = ev(
            "StopLogging",
            "cloudtrail.amazonaws.com",
            json!({"name": "main"}),
        );
        assert_eq!(
            resource_change(&stop).unwrap().resource_type,
            "AWS::CloudTrail::Trail"
        );
    }
}
