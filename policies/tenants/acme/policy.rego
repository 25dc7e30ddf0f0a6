# Policy of tenant acme.
#
# Every event is judged by `decision`, which must be {"allow": bool, "reasons": [...]}:
# allow is true when no reason to deny was found. The input is documented in docs/policy-input.md:
#   input.event    normalized fields (kind, action, principal, resource, ...)
#   input.raw      the original CloudTrail record or agent payload
#   input.context  protection level, anomaly score, principal trust, time
# A change that nothing refuses but a person must agree to first is answered
# {"allow": false, "require_approval": true, "reasons": [...]}.
package tenants.acme

import rego.v1

decision := {"allow": false, "require_approval": true, "reasons": sort([r | some r in approvals])} if {
	count(reasons) == 0
	count(approvals) > 0
} else := {"allow": count(reasons) == 0, "reasons": sort([r | some r in reasons])}

# What nothing refuses but a person must agree to first (docs/approvals.md): such an event is
# answered require_approval and, from an agent, opens an approval request; the agent is told
# the answer on its decisions topic.

# --- CloudTrail: CIS AWS Foundations monitoring controls (section 4) ---------------------------

cloudtrail if input.event.kind == "cloudtrail"

reasons contains "unauthorized API call (CIS 4.1)" if {
	cloudtrail
	unauthorized(input.raw.errorCode)
}

unauthorized(code) if endswith(code, "UnauthorizedOperation")

unauthorized(code) if startswith(code, "AccessDenied")

reasons contains "console login without MFA (CIS 4.2)" if {
	cloudtrail
	input.raw.eventName == "ConsoleLogin"
	not input.raw.additionalEventData.MFAUsed == "Yes"
}

reasons contains "root account used (CIS 4.3)" if {
	cloudtrail
	input.raw.userIdentity.type == "Root"
	not input.raw.userIdentity.invokedBy
	input.raw.eventType != "AwsServiceEvent"
}

reasons contains "IAM policy changed (CIS 4.4)" if {
	cloudtrail
	input.raw.eventSource == "iam.amazonaws.com"
	input.raw.eventName in {
		"DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy", "PutRolePolicy",
		"PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion", "DeletePolicyVersion",
		"AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy", "DetachUserPolicy",
		"AttachGroupPolicy", "DetachGroupPolicy",
	}
}

reasons contains "CloudTrail configuration changed (CIS 4.5)" if {
	cloudtrail
	input.raw.eventName in {"CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging"}
}

reasons contains "KMS key disabled or scheduled for deletion (CIS 4.7)" if {
	cloudtrail
	input.raw.eventSource == "kms.amazonaws.com"
	input.raw.eventName in {"DisableKey", "ScheduleKeyDeletion"}
}

reasons contains "S3 bucket policy changed (CIS 4.8)" if {
	cloudtrail
	input.raw.eventSource == "s3.amazonaws.com"
	input.raw.eventName in {
		"PutBucketAcl", "PutBucketPolicy", "PutBucketCors", "PutBucketLifecycle", "PutBucketReplication",
		"DeleteBucketPolicy", "DeleteBucketCors", "DeleteBucketLifecycle", "DeleteBucketReplication",
	}
}

reasons contains "security group opened to the internet (CIS 4.10)" if {
	cloudtrail
	input.raw.eventName == "AuthorizeSecurityGroupIngress"
	some perm in input.raw.requestParameters.ipPermissions.items
	some range in perm.ipRanges.items
	range.cidrIp == "0.0.0.0/0"
}

# --- Device events from agents: attribute-based access control (seed 001) ---------------------

device if input.event.kind == "device"

reasons contains sprintf("data residency: %s is not an allowed region", [region]) if {
	device
	region := input.raw.resource.region
	not region in data.tenants.acme.allowed_regions
}

reasons contains sprintf("%s may not %s %s", [input.event.principal, input.event.action, input.event.resource]) if {
	device
	input.event.action in {"write", "delete"}
	not input.event.principal in data.tenants.acme.writers
}

reasons contains "removable media is blocked" if {
	device
	input.event.action == "usb_insert"
	not data.tenants.acme.allow_removable_media
}

approvals contains sprintf("%s exports %s from a device: an approver must agree", [input.event.principal, input.event.resource]) if {
	device
	input.event.action == "export"
}

# --- Anomaly models (docs/anomaly-models.md) ----------------------------------------------------

# Unusual for this tenant: its anomaly model scored the event 0.75 or more (about 0.5 is usual).
# The score is 0 until a model has been trained, so this never fires before one has.
reasons contains "unusual activity for this tenant (anomaly score 0.75 or more)" if {
	input.context.anomaly_score >= 0.75
}

# Trust (0–100) of the event's principal, or of the agent for device events, after its recent
# anomalies (docs/anomaly-models.md, "Trust scores"); 100 until a model scores its events.
# Low trust (below 50): changes need a session authenticated with MFA (a step-up).
reasons contains sprintf("low trust (%d): changes need an MFA-authenticated session", [trust]) if {
	cloudtrail
	trust := input.context.principal_trust
	trust < 50
	trust >= 20
	not read_only
	not input.raw.userIdentity.sessionContext.attributes.mfaAuthenticated == "true"
}

# Untrusted (below 20): no changes at all until trust comes back.
reasons contains sprintf("untrusted (%d): changes are refused until trust comes back", [trust]) if {
	trust := input.context.principal_trust
	trust < 20
	not read_only
}

# --- Protection levels (docs/protection.md) ----------------------------------------------------

# The unit this event falls in is overloaded (its load rho reached 0.9): only reads pass.
reasons contains sprintf("unit %v is read-only under load: changes are refused until it recovers", [input.context.protection_unit]) if {
	input.context.protection_level == "read_only"
	not read_only
}

read_only if input.raw.readOnly == true

read_only if {
	cloudtrail
	some prefix in {"Get", "List", "Describe", "Head"}
	startswith(input.raw.eventName, prefix)
}

read_only if {
	device
	input.event.action in {"read", "open", "login"}
}
