-- Compliance scans (docs/compliance.md, "Scans and scores"): a framework judged for a tenant,
-- control by control, with its pass rate and severity-weighted score; kept for the trend.
CREATE TABLE compliance_scans (
    scan_id      uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    text        NOT NULL,
    framework    text        NOT NULL,
    framework_title text     NOT NULL,
    period_from  timestamptz NOT NULL,
    period_to    timestamptz NOT NULL,
    scanned_at   timestamptz NOT NULL DEFAULT now(),
    requested_by text        NOT NULL,
    passed       integer     NOT NULL,
    failed       integer     NOT NULL,
    muted        integer     NOT NULL,
    pass_rate    double precision,
    score        double precision,
    -- One object per control: pack, pack_version, control_id, requirement, title, severity,
    -- status (PASS, FAIL, MUTED), failing_resources, muted_resources, findings_in_period,
    -- resource_type, remediation.
    controls     jsonb       NOT NULL,
    CHECK (period_from <= period_to)
);
CREATE INDEX compliance_scans_trend ON compliance_scans (tenant_id, framework, scanned_at DESC);
