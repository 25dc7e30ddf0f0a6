-- Remediation over Kafka (docs/compliance.md, "Remediation"): one action per violation and
-- open period whose control remediates automatically or in a maintenance window. Rows are
-- written with the finding that opened the violation (an outbox); a sender publishes pending
-- ones on the commands topic, and results read back from the results topic finish them. An
-- action whose violation was resolved, suppressed or re-opened before it went out is cancelled.
CREATE TABLE remediation_actions (
    remediation_id uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    violation_id   uuid        NOT NULL REFERENCES compliance_violations (violation_id),
    -- The violation's times_reopened when this was asked: one action per open period.
    open_period    integer     NOT NULL,
    tenant_id      text        NOT NULL,
    pack           text        NOT NULL,
    control_id     text        NOT NULL,
    resource_type  text        NOT NULL,
    resource_id    text        NOT NULL,
    account        text        NOT NULL,
    region         text,
    strategy       text        NOT NULL CHECK (strategy IN ('automatic', 'scheduled')),
    action         text        NOT NULL,
    status         text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'succeeded', 'failed', 'cancelled')),
    -- Set when sent: whether the command asked for a dry run.
    dry_run        boolean,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz,
    attempts       integer     NOT NULL DEFAULT 0,
    finished_at    timestamptz,
    detail         text,
    executor       text,
    UNIQUE (violation_id, open_period)
);
CREATE INDEX remediation_actions_pending ON remediation_actions (requested_at) WHERE status = 'pending';
CREATE INDEX remediation_actions_tenant ON remediation_actions (tenant_id, requested_at DESC);
