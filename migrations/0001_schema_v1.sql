-- Portcullis schema v1: tenants, events, decisions, dead letters.
-- Analysts: see docs/schema.md. This file changes only through new migrations.

CREATE TABLE tenants (
    tenant_id    text PRIMARY KEY CHECK (tenant_id ~ '^[a-z][a-z0-9_]{0,62}$'),
    display_name text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tenants IS 'Every tenant the engine accepts events for.';

CREATE TABLE tenant_accounts (
    account_id text PRIMARY KEY CHECK (account_id ~ '^[0-9]{12}$'),
    tenant_id  text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    added_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_accounts_tenant_idx ON tenant_accounts (tenant_id);
COMMENT ON TABLE tenant_accounts IS 'AWS account id -> tenant: how CloudTrail records find their tenant.';

-- Events, one row per normalized event. Partitioned by month of event_time; the key includes the
-- partition column, as Postgres requires, and makes redelivered events collide instead of doubling.
CREATE TABLE events (
    tenant_id   text        NOT NULL,
    event_id    text        NOT NULL,
    event_time  timestamptz NOT NULL,
    source      text        NOT NULL CHECK (source IN ('kafka', 'mqtt')),
    kind        text        NOT NULL CHECK (kind IN ('cloudtrail', 'device')),
    account     text        NOT NULL,
    principal   text        NOT NULL,
    action      text        NOT NULL,
    service     text        NOT NULL,
    resource    text,
    source_ip   text,
    raw         jsonb       NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id, event_time)
) PARTITION BY RANGE (event_time);
CREATE INDEX events_tenant_time_idx ON events (tenant_id, event_time DESC);
CREATE INDEX events_tenant_principal_idx ON events (tenant_id, principal, event_time DESC);
CREATE INDEX events_action_idx ON events (action, event_time DESC);
COMMENT ON TABLE events IS 'Normalized events from Kafka (CloudTrail) and MQTT (agents); raw keeps the original record.';

CREATE TABLE decisions (
    decision_id     uuid        NOT NULL,
    tenant_id       text        NOT NULL,
    event_id        text        NOT NULL,
    event_time      timestamptz NOT NULL,
    rule_path       text        NOT NULL,
    allowed         boolean     NOT NULL,
    outcome         text GENERATED ALWAYS AS (CASE WHEN allowed THEN 'allow' ELSE 'deny' END) STORED,
    result          jsonb,
    bundle_revision text        NOT NULL,
    eval_micros     integer     NOT NULL,
    decided_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (decision_id, event_time)
) PARTITION BY RANGE (event_time);
CREATE INDEX decisions_tenant_time_idx ON decisions (tenant_id, event_time DESC);
CREATE INDEX decisions_event_idx ON decisions (tenant_id, event_id);
CREATE INDEX decisions_denied_idx ON decisions (tenant_id, event_time DESC) WHERE NOT allowed;
COMMENT ON TABLE decisions IS 'One row per (event, rule): the policy verdict, the full rule value and the bundle revision that produced it.';
COMMENT ON COLUMN decisions.result IS 'The rule value as JSON; NULL when the rule was undefined for the input (which denies).';

CREATE TABLE dead_letters (
    dead_letter_id  text PRIMARY KEY,
    source          text        NOT NULL CHECK (source IN ('kafka', 'mqtt')),
    topic           text        NOT NULL,
    kafka_partition integer,
    kafka_offset    bigint,
    record_index    integer,
    tenant_hint     text,
    payload         bytea       NOT NULL,
    reason          text        NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_failed_at_idx ON dead_letters (failed_at DESC);
COMMENT ON TABLE dead_letters IS 'Input that could not be decoded or evaluated: the raw bytes, where they came from, and why.';

-- Creates monthly partitions of `parent` for `months` months starting at the month of `start`.
-- A month whose rows already landed in the default partition is skipped (with a notice) rather
-- than failing: those rows stay queryable through the parent table.
CREATE FUNCTION portcullis_ensure_partitions(parent regclass, start timestamptz, months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', start)::date;
    name text;
    created integer := 0;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        name := format('%s_%s', parent::text, to_char(m, 'YYYY_MM'));
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                               name, parent, m, (m + interval '1 month')::date);
                created := created + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'partition % skipped: the default partition already holds rows for it', name;
            END;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$;

CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE TABLE decisions_default PARTITION OF decisions DEFAULT;
SELECT portcullis_ensure_partitions('events', now() - interval '1 month', 4);
SELECT portcullis_ensure_partitions('decisions', now() - interval '1 month', 4);

-- The view most analyst questions start from: each decision with the event it judged.
CREATE VIEW decision_log AS
SELECT d.event_time,
       d.tenant_id,
       e.source,
       e.kind,
       e.account,
       e.principal,
       e.action,
       e.service,
       e.resource,
       e.source_ip,
       d.outcome,
       d.result -> 'reasons' AS reasons,
       d.rule_path,
       d.bundle_revision,
       d.eval_micros,
       d.decided_at,
       d.event_id,
       d.decision_id
FROM decisions d
JOIN events e ON e.tenant_id = d.tenant_id AND e.event_id = d.event_id AND e.event_time = d.event_time;
COMMENT ON VIEW decision_log IS 'Decisions joined with the events they judged.';
