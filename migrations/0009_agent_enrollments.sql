-- Agents enrolled with broker credentials (portcullis agent enroll). An enrolled agent's
-- groups are the ones given here, not the ones it says in its hello: the broker has checked
-- who it is, and its groups decide which segments' policy it receives.
CREATE TABLE agent_enrollments (
    tenant_id       text        NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    agent_id        text        NOT NULL CHECK (agent_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'),
    groups          text[]      NOT NULL,
    broker_username text        NOT NULL UNIQUE,
    enrolled_at     timestamptz NOT NULL DEFAULT now(),
    enrolled_by     text        NOT NULL,
    PRIMARY KEY (tenant_id, agent_id)
);
COMMENT ON TABLE agent_enrollments IS 'Agents given broker credentials, with the groups they were enrolled in (these decide their segments). The password is never stored here: the broker keeps only its hash.';
