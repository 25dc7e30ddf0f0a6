-- Protection levels (docs/protection.md): units configured per tenant, every change of level,
-- and the load sampled over time for the console's chart.

CREATE TABLE protection_units (
    tenant_id        text             NOT NULL,
    unit             text             NOT NULL CHECK (unit ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    -- A unit key, or a prefix ending in '*' (cloudtrail:iam.amazonaws.com, api:*, approvals).
    selector         text             NOT NULL CHECK (length(selector) BETWEEN 1 AND 200),
    -- μ: what the unit serves per second (for `approvals`, the approvers' rate).
    capacity_per_sec double precision NOT NULL CHECK (capacity_per_sec > 0),
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, unit)
);

CREATE TABLE protection_transitions (
    tenant_id  text             NOT NULL,
    unit       text             NOT NULL,
    from_level text             NOT NULL CHECK (from_level IN ('permissive', 'require_approval', 'read_only')),
    to_level   text             NOT NULL CHECK (to_level IN ('permissive', 'require_approval', 'read_only')),
    lambda     double precision NOT NULL,
    mu         double precision NOT NULL,
    -- 'Infinity' when work arrived and nothing served it.
    rho        double precision NOT NULL,
    at         timestamptz      NOT NULL,
    -- The engine that saw it (each engine measures the arrivals it judges).
    engine     text             NOT NULL
);
CREATE INDEX protection_transitions_by_tenant ON protection_transitions (tenant_id, at DESC);

CREATE TABLE protection_samples (
    tenant_id text             NOT NULL,
    unit      text             NOT NULL,
    at        timestamptz      NOT NULL,
    engine    text             NOT NULL,
    lambda    double precision NOT NULL,
    mu        double precision NOT NULL,
    rho       double precision NOT NULL,
    level     text             NOT NULL,
    PRIMARY KEY (tenant_id, unit, at, engine)
);
