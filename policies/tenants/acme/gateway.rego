# Forward-auth gateway example (docs/gateway.md). A reverse proxy in front of acme's internal
# web apps asks, for every request, GET /v1/gateway/acme/gateway/allow with the request
# described in headers; the input is:
#   input.principal  the signed-in user the proxy names (null when nobody is signed in)
#   input.groups     the user's groups, as the proxy lists them
#   input.action     the request's method
#   input.request    {method, path, query, host, scheme, client_ip, headers}
# An answer with "allow": true is 200 (the request passes). One with "require_approval": true
# opens an approval request (docs/approvals.md): 403 until an approver says yes, then 200 for
# the same request. Anything else is 403.
package tenants.acme.gateway

import rego.v1

allow := {"allow": false, "require_approval": true, "reasons": sort([r | some r in needs_approval])} if {
	count(reasons) == 0
	count(needs_approval) > 0
} else := {"allow": count(reasons) == 0, "reasons": sort([r | some r in reasons])}

reasons contains "nobody is signed in" if input.principal == null

reasons contains "reports are for the finance group" if {
	startswith(input.request.path, "/reports/")
	not "finance" in input.groups
}

reasons contains sprintf("%s is not allowed through the gateway: it only reads", [input.request.method]) if {
	not input.request.method in {"GET", "HEAD", "OPTIONS"}
}

# The admin area: anyone signed in may ask, an approver decides.
needs_approval contains "the admin area needs an approver's yes" if {
	startswith(input.request.path, "/admin/")
	not "admins" in input.groups
}
