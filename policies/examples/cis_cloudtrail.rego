# CIS AWS Foundations Benchmark, monitoring section (controls 4.1-4.15), written as a tenant's
# own allow/deny rule: `decision` allows an event when no control fired. It is the workload of
# `portcullis bench policy`; tenants enable the shared, tested pack `cis_aws_monitoring`
# instead (docs/compliance.md).
# `portcullis bench policy` measures it (docs/benchmarks.md).
package tenants.pack

import rego.v1

decision := {"allow": count(violations) == 0, "reasons": sort([v | some v in violations])}

ct := input.raw

# 4.1 Unauthorized API calls.
violations contains "unauthorized API call (CIS 4.1)" if {
	code := ct.errorCode
	some prefix in {"AccessDenied", "UnauthorizedOperation", "Client.UnauthorizedOperation"}
	startswith(code, prefix)
}

# 4.2 Console sign-in without MFA.
violations contains "console login without MFA (CIS 4.2)" if {
	ct.eventName == "ConsoleLogin"
	ct.responseElements.ConsoleLogin == "Success"
	not ct.additionalEventData.MFAUsed == "Yes"
}

# 4.3 Root account usage.
violations contains "root account used (CIS 4.3)" if {
	ct.userIdentity.type == "Root"
	not ct.userIdentity.invokedBy
	ct.eventType != "AwsServiceEvent"
}

# 4.4 IAM policy changes.
violations contains "IAM policy changed (CIS 4.4)" if {
	ct.eventSource == "iam.amazonaws.com"
	ct.eventName in {
		"DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy", "PutRolePolicy",
		"PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion", "DeletePolicyVersion",
		"AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy", "DetachUserPolicy",
		"AttachGroupPolicy", "DetachGroupPolicy",
	}
}

# 4.5 CloudTrail configuration changes.
violations contains "CloudTrail configuration changed (CIS 4.5)" if {
	ct.eventSource == "cloudtrail.amazonaws.com"
	ct.eventName in {"CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging"}
}

# 4.6 Console authentication failures.
violations contains "console authentication failure (CIS 4.6)" if {
	ct.eventName == "ConsoleLogin"
	ct.errorMessage == "Failed authentication"
}

# 4.7 Customer-managed keys disabled or scheduled for deletion.
violations contains "KMS key disabled or scheduled for deletion (CIS 4.7)" if {
	ct.eventSource == "kms.amazonaws.com"
	ct.eventName in {"DisableKey", "ScheduleKeyDeletion"}
}

# 4.8 S3 bucket policy changes.
violations contains "S3 bucket policy changed (CIS 4.8)" if {
	ct.eventSource == "s3.amazonaws.com"
	ct.eventName in {
		"PutBucketAcl", "PutBucketPolicy", "PutBucketCors", "PutBucketLifecycle", "PutBucketReplication",
		"DeleteBucketPolicy", "DeleteBucketCors", "DeleteBucketLifecycle", "DeleteBucketReplication",
	}
}

# 4.9 AWS Config configuration changes.
violations contains "AWS Config changed (CIS 4.9)" if {
	ct.eventSource == "config.amazonaws.com"
	ct.eventName in {"StopConfigurationRecorder", "DeleteDeliveryChannel", "PutDeliveryChannel", "PutConfigurationRecorder"}
}

# 4.10 Security group changes.
violations contains "security group changed (CIS 4.10)" if {
	ct.eventSource == "ec2.amazonaws.com"
	ct.eventName in {
		"AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress",
		"RevokeSecurityGroupEgress", "CreateSecurityGroup", "DeleteSecurityGroup",
	}
}

# 4.11 Network ACL changes.
violations contains "network ACL changed (CIS 4.11)" if {
	ct.eventSource == "ec2.amazonaws.com"
	ct.eventName in {
		"CreateNetworkAcl", "CreateNetworkAclEntry", "DeleteNetworkAcl", "DeleteNetworkAclEntry",
		"ReplaceNetworkAclEntry", "ReplaceNetworkAclAssociation",
	}
}

# 4.12 Network gateway changes.
violations contains "network gateway changed (CIS 4.12)" if {
	ct.eventSource == "ec2.amazonaws.com"
	ct.eventName in {
		"CreateCustomerGateway", "DeleteCustomerGateway", "AttachInternetGateway", "CreateInternetGateway",
		"DeleteInternetGateway", "DetachInternetGateway",
	}
}

# 4.13 Route table changes.
violations contains "route table changed (CIS 4.13)" if {
	ct.eventSource == "ec2.amazonaws.com"
	ct.eventName in {
		"CreateRoute", "CreateRouteTable", "ReplaceRoute", "ReplaceRouteTableAssociation",
		"DeleteRouteTable", "DeleteRoute", "DisassociateRouteTable",
	}
}

# 4.14 VPC changes.
violations contains "VPC changed (CIS 4.14)" if {
	ct.eventSource == "ec2.amazonaws.com"
	ct.eventName in {
		"CreateVpc", "DeleteVpc", "ModifyVpcAttribute", "AcceptVpcPeeringConnection",
		"CreateVpcPeeringConnection", "DeleteVpcPeeringConnection", "RejectVpcPeeringConnection",
		"AttachClassicLinkVpc", "DetachClassicLinkVpc", "DisableVpcClassicLink", "EnableVpcClassicLink",
	}
}

# 4.15 AWS Organizations changes.
violations contains "AWS Organizations changed (CIS 4.15)" if {
	ct.eventSource == "organizations.amazonaws.com"
	ct.eventName in {
		"AcceptHandshake", "AttachPolicy", "CreateAccount", "CreateOrganizationalUnit", "CreatePolicy",
		"DeclineHandshake", "DeleteOrganization", "DeleteOrganizationalUnit", "DeletePolicy",
		"DetachPolicy", "DisablePolicyType", "EnablePolicyType", "InviteAccountToOrganization",
		"LeaveOrganization", "MoveAccount", "RemoveAccountFromOrganization", "UpdatePolicy",
		"UpdateOrganizationalUnit",
	}
}
