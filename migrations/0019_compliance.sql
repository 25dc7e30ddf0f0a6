-- Compliance (docs/compliance.md): what the tenants' packs found on CloudTrail events, and the
-- violations those findings open, with their lifecycle.

-- One row per (decision, pack, control): a redelivered event finds its findings already here
-- and counts nothing twice. `violates` is false for a failed attempt at a change.
CREATE TABLE compliance_findings (
    tenant_id     text        NOT NULL,
    decision_id   uuid        NOT NULL,
    pack          text        NOT NULL,
    control_id    text        NOT NULL,
    pack_version  text        NOT NULL,
    event_id      text        NOT NULL,
    event_time    timestamptz NOT NULL,
    severity      text        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    principal     text        NOT NULL,
    action        text        NOT NULL,
    succeeded     boolean     NOT NULL,
    violates      boolean     NOT NULL,
    -- The violation this finding raised or joined (none for an attempt that failed).
    violation_id  uuid,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, decision_id, pack, control_id)
);
CREATE INDEX compliance_findings_time ON compliance_findings (tenant_id, event_time DESC);
CREATE INDEX compliance_findings_violation ON compliance_findings (violation_id, event_time DESC)
    WHERE violation_id IS NOT NULL;

-- One row per (tenant, pack, control, resource), ever: its id is derived from that key, it is
-- re-opened when the control fires again after it was resolved (or its suppression expired).
CREATE TABLE compliance_violations (
    violation_id     uuid        PRIMARY KEY,
    tenant_id        text        NOT NULL,
    pack             text        NOT NULL,
    control_id       text        NOT NULL,
    resource_type    text        NOT NULL,
    resource_id      text        NOT NULL,
    pack_version     text        NOT NULL,
    title            text        NOT NULL,
    severity         text        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status           text        NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'acknowledged', 'remediating', 'resolved', 'suppressed')),
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    occurrences      bigint      NOT NULL,
    opened_at        timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    times_reopened   integer     NOT NULL DEFAULT 0,
    resolved_at      timestamptz,
    suppressed_until timestamptz,
    -- Why it was last acknowledged, suppressed, resolved or re-opened, and by whom.
    reason           text,
    changed_by       text,
    UNIQUE (tenant_id, pack, control_id, resource_type, resource_id),
    CHECK ((status = 'suppressed') = (suppressed_until IS NOT NULL)),
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
CREATE INDEX compliance_violations_status ON compliance_violations (tenant_id, status, severity);

-- Every change of a violation's status: who, when, why.
CREATE TABLE compliance_violation_history (
    violation_id uuid        NOT NULL REFERENCES compliance_violations (violation_id),
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    status       text        NOT NULL,
    reason       text,
    changed_by   text        NOT NULL
);
CREATE INDEX compliance_violation_history_of ON compliance_violation_history (violation_id, at);
