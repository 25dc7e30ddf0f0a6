-- The resource inventory (docs/compliance.md, "Resources"): each resource a tenant's CloudTrail
-- change events created, modified or deleted, with its last change, who made it and when.
-- Kept for tenants that enable compliance packs.
CREATE TABLE resources (
    tenant_id        text        NOT NULL,
    resource_type    text        NOT NULL,
    resource_id      text        NOT NULL,
    account          text        NOT NULL,
    region           text,
    state            text        NOT NULL CHECK (state IN ('present', 'deleted')),
    first_seen       timestamptz NOT NULL,
    last_change      text        NOT NULL CHECK (last_change IN ('created', 'modified', 'deleted')),
    last_changed_at  timestamptz NOT NULL,
    last_changed_by  text        NOT NULL,
    last_event_id    text        NOT NULL,
    last_event_name  text        NOT NULL,
    PRIMARY KEY (tenant_id, resource_type, resource_id)
);
CREATE INDEX resources_changed ON resources (tenant_id, last_changed_at DESC);
-- A resource's violations, for the inventory's view of them.
CREATE INDEX compliance_violations_resource
    ON compliance_violations (tenant_id, resource_type, resource_id);
-- When a violation was last resolved, kept when it re-opens: a resource changed after that
-- has drifted from the state it was made compliant in.
ALTER TABLE compliance_violations ADD COLUMN last_resolved_at timestamptz;
