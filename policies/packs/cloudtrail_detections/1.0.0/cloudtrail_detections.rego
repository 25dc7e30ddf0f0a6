# CloudTrail detections security teams alert on, beyond CIS's monitoring section. They are
# precise: each names the calls that change something, its look-alikes (reads, the reverse
# action, service-made calls, sign-ins with MFA) stay quiet, and a failed attempt still fires
# so that it is counted, while its finding says the call did not succeed.
package packs.cloudtrail_detections

import rego.v1

ct := input.raw

params := object.get(ct, "requestParameters", {})

# Someone's own call: an IAM user, the root user, or a console session, not a service acting
# on their behalf (CloudFormation, Control Tower, …).
by_person if {
	ct.userIdentity.type in {"IAMUser", "Root"}
	not ct.userIdentity.invokedBy
}

by_person if {
	ct.sessionCredentialFromConsole == "true"
	not ct.userIdentity.invokedBy
}

fired contains "root_access_key_created" if {
	ct.eventName == "CreateAccessKey"
	ct.eventSource == "iam.amazonaws.com"
	ct.userIdentity.type == "Root"
	not params.userName
}

fired contains "mfa_deactivated" if {
	ct.eventName in {"DeactivateMFADevice", "DeleteVirtualMFADevice"}
	ct.eventSource == "iam.amazonaws.com"
}

fired contains "guardduty_disabled" if {
	ct.eventName == "DeleteDetector"
	ct.eventSource == "guardduty.amazonaws.com"
}

fired contains "guardduty_disabled" if {
	ct.eventName == "UpdateDetector"
	ct.eventSource == "guardduty.amazonaws.com"
	params.enable == false
}

fired contains "securityhub_disabled" if {
	ct.eventName == "DisableSecurityHub"
	ct.eventSource == "securityhub.amazonaws.com"
}

fired contains "s3_public_access_block_removed" if {
	ct.eventName in {"DeleteBucketPublicAccessBlock", "DeleteAccountPublicAccessBlock"}
	ct.eventSource == "s3.amazonaws.com"
}

fired contains "s3_public_access_block_removed" if {
	ct.eventName in {"PutBucketPublicAccessBlock", "PutAccountPublicAccessBlock"}
	ct.eventSource == "s3.amazonaws.com"
	some setting in ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"]
	object.get(params, ["PublicAccessBlockConfiguration", setting], false) == false
}

fired contains "ebs_default_encryption_disabled" if {
	ct.eventName == "DisableEbsEncryptionByDefault"
	ct.eventSource == "ec2.amazonaws.com"
}

fired contains "cloudtrail_logging_stopped" if {
	ct.eventName == "StopLogging"
	ct.eventSource == "cloudtrail.amazonaws.com"
}

fired contains "cloudtrail_trail_deleted" if {
	ct.eventName == "DeleteTrail"
	ct.eventSource == "cloudtrail.amazonaws.com"
}

fired contains "iam_user_created_by_person" if {
	ct.eventName == "CreateUser"
	ct.eventSource == "iam.amazonaws.com"
	by_person
}

fired contains "root_console_login" if {
	ct.eventName == "ConsoleLogin"
	ct.userIdentity.type == "Root"
}

fired contains "config_recorder_stopped" if {
	ct.eventName in {"StopConfigurationRecorder", "DeleteConfigurationRecorder"}
	ct.eventSource == "config.amazonaws.com"
}

public_grantees := {
	"http://acs.amazonaws.com/groups/global/AllUsers",
	"http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
}

fired contains "s3_bucket_made_public" if {
	ct.eventName == "PutBucketAcl"
	ct.eventSource == "s3.amazonaws.com"
	some acl in as_list(params["x-amz-acl"])
	acl in {"public-read", "public-read-write", "authenticated-read"}
}

fired contains "s3_bucket_made_public" if {
	ct.eventName == "PutBucketAcl"
	ct.eventSource == "s3.amazonaws.com"
	some grant in as_list(params.AccessControlPolicy.AccessControlList.Grant)
	grant.Grantee.URI in public_grantees
}

fired contains "s3_bucket_made_public" if {
	ct.eventName == "PutBucketPolicy"
	ct.eventSource == "s3.amazonaws.com"
	some statement in as_list(params.bucketPolicy.Statement)
	statement.Effect == "Allow"
	anyone(statement.Principal)
	not statement.Condition
}

anyone(principal) if principal == "*"

anyone(principal) if "*" in as_list(principal.AWS)

as_list(x) := x if is_array(x)

as_list(x) := [x] if not is_array(x)

# Administration and database ports (SSH, RDP, Telnet, FTP, SMB, databases, caches, search),
# or every port: a web port open to the world is a website, not a finding.
sensitive_ports := {20, 21, 22, 23, 445, 1433, 1521, 2375, 2379, 3306, 3389, 5432, 5601, 5900, 6379, 9200, 11211, 27017}

fired contains "security_group_open_to_world" if {
	ct.eventName == "AuthorizeSecurityGroupIngress"
	ct.eventSource == "ec2.amazonaws.com"
	some permission in params.ipPermissions.items
	world_range(permission)
	exposes_sensitive(permission)
}

exposes_sensitive(permission) if permission.ipProtocol == "-1"

exposes_sensitive(permission) if {
	some port in sensitive_ports
	permission.fromPort <= port
	port <= permission.toPort
}

world_range(permission) if {
	some range in permission.ipRanges.items
	range.cidrIp == "0.0.0.0/0"
}

world_range(permission) if {
	some range in permission.ipv6Ranges.items
	range.cidrIpv6 == "::/0"
}

admin_policies := {"arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/IAMFullAccess"}

fired contains "admin_policy_attached" if {
	ct.eventName in {"AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy"}
	ct.eventSource == "iam.amazonaws.com"
	params.policyArn in admin_policies
}

fired contains "login_profile_set_for_another_user" if {
	ct.eventName in {"CreateLoginProfile", "UpdateLoginProfile"}
	ct.eventSource == "iam.amazonaws.com"
	params.userName
	not params.userName == ct.userIdentity.userName
}

fired contains "log_group_deleted" if {
	ct.eventName == "DeleteLogGroup"
	ct.eventSource == "logs.amazonaws.com"
}

fired contains "vpc_flow_logs_deleted" if {
	ct.eventName == "DeleteFlowLogs"
	ct.eventSource == "ec2.amazonaws.com"
}

fired contains "guardduty_findings_suppressed" if {
	ct.eventName in {"CreateFilter", "UpdateFilter"}
	ct.eventSource == "guardduty.amazonaws.com"
	params.action == "ARCHIVE"
}

fired contains "access_analyzer_deleted" if {
	ct.eventName == "DeleteAnalyzer"
	ct.eventSource == "access-analyzer.amazonaws.com"
}

fired contains "ebs_snapshot_made_public" if {
	ct.eventName == "ModifySnapshotAttribute"
	ct.eventSource == "ec2.amazonaws.com"
	some item in params.createVolumePermission.add.items
	item.group == "all"
}

fired contains "ami_made_public" if {
	ct.eventName == "ModifyImageAttribute"
	ct.eventSource == "ec2.amazonaws.com"
	some item in params.launchPermission.add.items
	item.group == "all"
}

fired contains "rds_snapshot_made_public" if {
	ct.eventName in {"ModifyDBSnapshotAttribute", "ModifyDBClusterSnapshotAttribute"}
	ct.eventSource == "rds.amazonaws.com"
	params.attributeName == "restore"
	"all" in params.valuesToAdd
}

fired contains "password_policy_deleted" if {
	ct.eventName == "DeleteAccountPasswordPolicy"
	ct.eventSource == "iam.amazonaws.com"
}

fired contains "s3_bucket_encryption_removed" if {
	ct.eventName == "DeleteBucketEncryption"
	ct.eventSource == "s3.amazonaws.com"
}
