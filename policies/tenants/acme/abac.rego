# Decision API example, seed 001's ABAC request (POST /v1/data/tenants/acme/allow):
#   {"input": {"subject": {"tenant_id": "acme", "user_id": "alice"}, "action": "read",
#              "resource": {"type": "sensor_data", "region": "EU"},
#              "environment": {"time": "2026-11-22T10:00:00Z"}}}
# The answer is {"allow": bool, "reason": "...", "redact": [fields to hide from the caller]}.
package tenants.acme

import rego.v1

default allow := {"allow": false, "reason": "no rule allowed this request", "redact": []}

allow := {"allow": true, "reason": "Allowed by data residency policy", "redact": redactions} if {
	input.subject.tenant_id == "acme"
	input.action in {"read", "list"}
	input.resource.region in data.tenants.acme.allowed_regions
}

allow := {"allow": true, "reason": "writer in an allowed region", "redact": []} if {
	input.subject.tenant_id == "acme"
	input.action in {"write", "delete"}
	input.subject.user_id in data.tenants.acme.writers
	input.resource.region in data.tenants.acme.allowed_regions
}

redactions := [f | some f in data.tenants.acme.redact[input.resource.type]]
