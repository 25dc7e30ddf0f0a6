-- Approval requests (docs/approvals.md): a decision whose rule answered `require_approval`
-- opens one; an approver answers it, or it expires (a denial). Each answer has a receipt of
-- kind 'approval' in the tenant's log.

ALTER TABLE receipts DROP CONSTRAINT receipts_kind_check;
ALTER TABLE receipts ADD CONSTRAINT receipts_kind_check
    CHECK (kind IN ('event', 'query', 'approval'));

CREATE TABLE approvals (
    approval_id     uuid        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    -- The same request (rule, principal, action, resource) has the same key: a pending
    -- request is reused, an approved one found again.
    request_key     text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    source          text        NOT NULL CHECK (source IN ('api', 'gateway')),
    rule            text        NOT NULL,
    principal       text,
    action          text,
    resource        text        NOT NULL,
    reasons         jsonb       NOT NULL DEFAULT '[]',
    -- The decision that asked, and the policy it was made under.
    decision_id     uuid        NOT NULL,
    policy_revision text        NOT NULL,
    policy_digest   text        NOT NULL,
    requested_at    timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    answered_at     timestamptz,
    -- A token's name, a CLI user; NULL for an expiry.
    answered_by     text,
    note            text,
    -- Until when an approved request lets the same request through.
    grant_until     timestamptz,
    CHECK ((status = 'pending') = (answered_at IS NULL)),
    CHECK ((status = 'approved') = (grant_until IS NOT NULL))
);

CREATE UNIQUE INDEX approvals_one_pending ON approvals (tenant_id, request_key)
    WHERE status = 'pending';
CREATE INDEX approvals_by_tenant ON approvals (tenant_id, requested_at DESC);
CREATE INDEX approvals_pending_expiry ON approvals (expires_at) WHERE status = 'pending';
CREATE INDEX approvals_grants ON approvals (tenant_id, request_key, grant_until DESC)
    WHERE status = 'approved';

-- The approval a decision API or gateway decision opened, reused or was let through by.
ALTER TABLE api_decisions ADD COLUMN approval_id uuid;
