# CIS Amazon Web Services Foundations Benchmark v3.0.0, section 4 (Monitoring), controls
# 4.1-4.15. CIS checks these by reading the metric filters on a trail's log group; this pack
# applies the same filter patterns to the events themselves, as they arrive. Each rule is its
# control's pattern, term for term, with CloudWatch's reading of `!=`: a field that is absent
# is not equal. Whether the call succeeded is the finding's, not the rule's: CIS's filters
# match failed calls too.
package packs.cis_aws_monitoring

import rego.v1

ct := input.raw

# {($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*")
#  && ($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket")}
fired contains "4.1" if {
	unauthorized(ct.errorCode)
	not ct.sourceIPAddress == "delivery.logs.amazonaws.com"
	not ct.eventName == "HeadBucket"
}

unauthorized(code) if endswith(code, "UnauthorizedOperation")

unauthorized(code) if startswith(code, "AccessDenied")

# The benchmark's pattern for accounts that also sign in through SSO:
# {($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes")
#  && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success")}
fired contains "4.2" if {
	ct.eventName == "ConsoleLogin"
	not ct.additionalEventData.MFAUsed == "Yes"
	ct.userIdentity.type == "IAMUser"
	ct.responseElements.ConsoleLogin == "Success"
}

# {$.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS
#  && $.eventType != "AwsServiceEvent"}
fired contains "4.3" if {
	ct.userIdentity.type == "Root"
	not ct.userIdentity.invokedBy
	not ct.eventType == "AwsServiceEvent"
}

fired contains "4.4" if {
	ct.eventName in {
		"DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy",
		"PutRolePolicy", "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion",
		"DeletePolicyVersion", "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy",
		"DetachUserPolicy", "AttachGroupPolicy", "DetachGroupPolicy",
	}
}

fired contains "4.5" if {
	ct.eventName in {"CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging"}
}

fired contains "4.6" if {
	ct.eventName == "ConsoleLogin"
	ct.errorMessage == "Failed authentication"
}

fired contains "4.7" if {
	ct.eventName in {"DisableKey", "ScheduleKeyDeletion"}
	ct.eventSource == "kms.amazonaws.com"
}

fired contains "4.8" if {
	ct.eventName in {
		"PutBucketAcl", "PutBucketPolicy", "PutBucketCors", "PutBucketLifecycle",
		"PutBucketReplication", "DeleteBucketPolicy", "DeleteBucketCors",
		"DeleteBucketLifecycle", "DeleteBucketReplication",
	}
	ct.eventSource == "s3.amazonaws.com"
}

fired contains "4.9" if {
	ct.eventName in {
		"StopConfigurationRecorder", "DeleteDeliveryChannel", "PutDeliveryChannel",
		"PutConfigurationRecorder",
	}
	ct.eventSource == "config.amazonaws.com"
}

fired contains "4.10" if {
	ct.eventName in {
		"AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
		"RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress", "CreateSecurityGroup",
		"DeleteSecurityGroup",
	}
}

fired contains "4.11" if {
	ct.eventName in {
		"CreateNetworkAcl", "CreateNetworkAclEntry", "DeleteNetworkAcl", "DeleteNetworkAclEntry",
		"ReplaceNetworkAclEntry", "ReplaceNetworkAclAssociation",
	}
}

fired contains "4.12" if {
	ct.eventName in {
		"CreateCustomerGateway", "DeleteCustomerGateway", "AttachInternetGateway",
		"CreateInternetGateway", "DeleteInternetGateway", "DetachInternetGateway",
	}
}

fired contains "4.13" if {
	ct.eventName in {
		"CreateRoute", "CreateRouteTable", "ReplaceRoute", "ReplaceRouteTableAssociation",
		"DeleteRouteTable", "DeleteRoute", "DisassociateRouteTable",
	}
	ct.eventSource == "ec2.amazonaws.com"
}

fired contains "4.14" if {
	ct.eventName in {
		"CreateVpc", "DeleteVpc", "ModifyVpcAttribute", "AcceptVpcPeeringConnection",
		"CreateVpcPeeringConnection", "DeleteVpcPeeringConnection", "RejectVpcPeeringConnection",
		"AttachClassicLinkVpc", "DetachClassicLinkVpc", "DisableVpcClassicLink",
		"EnableVpcClassicLink",
	}
}

fired contains "4.15" if {
	ct.eventName in {
		"AcceptHandshake", "AttachPolicy", "CreateAccount", "CreateOrganizationalUnit",
		"CreatePolicy", "DeclineHandshake", "DeleteOrganization", "DeleteOrganizationalUnit",
		"DeletePolicy", "DetachPolicy", "DisablePolicyType", "EnablePolicyType",
		"InviteAccountToOrganization", "LeaveOrganization", "MoveAccount",
		"RemoveAccountFromOrganization", "UpdatePolicy", "UpdateOrganizationalUnit",
	}
	ct.eventSource == "organizations.amazonaws.com"
}
