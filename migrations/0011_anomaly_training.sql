-- Anomaly models (issue 18): training sessions per tenant and scope, the feature rows they
-- collect, and the model versions trained from them. Analysts: docs/schema.md.

CREATE TABLE training_sessions (
    session_id     uuid        PRIMARY KEY,
    tenant_id      text        NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    scope          text        NOT NULL CHECK (scope IN ('cloudtrail', 'device')),
    -- active: collecting rows; trained: stopped, and model_version was trained from it;
    -- failed: stopped, no model (failure says why); closed: force-closed, not trained.
    state          text        NOT NULL DEFAULT 'active'
                               CHECK (state IN ('active', 'trained', 'failed', 'closed')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    started_by     text        NOT NULL,
    ended_at       timestamptz,
    ended_by       text,
    model_version  integer,
    failure        text,
    CHECK ((state = 'active') = (ended_at IS NULL)),
    CHECK ((state = 'trained') = (model_version IS NOT NULL))
);
-- At most one active session per tenant and scope, whatever crashed in between: the database
-- says so, not a pointer in one process's memory.
CREATE UNIQUE INDEX training_sessions_one_active ON training_sessions (tenant_id, scope)
    WHERE state = 'active';
CREATE INDEX training_sessions_tenant_idx ON training_sessions (tenant_id, scope, started_at DESC);
COMMENT ON TABLE training_sessions IS 'Training sessions: while one is active for a tenant and scope, its events'' features are collected; stopping it trains a model version.';

-- One row per event collected by a session, keyed by the event's id so that a redelivered
-- event is collected once.
CREATE TABLE training_rows (
    session_id   uuid               NOT NULL REFERENCES training_sessions (session_id) ON DELETE CASCADE,
    event_id     text               NOT NULL,
    -- The event's features before encoding, in the order of its scope's feature schema
    -- (docs/anomaly-models.md): categorical values as text, then numeric values.
    categorical  text[]             NOT NULL,
    numeric      double precision[] NOT NULL,
    collected_at timestamptz        NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, event_id)
);
COMMENT ON TABLE training_rows IS 'The features of each event collected by a training session, before encoding (docs/anomaly-models.md, "Features").';

CREATE TABLE anomaly_models (
    tenant_id      text        NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    scope          text        NOT NULL CHECK (scope IN ('cloudtrail', 'device')),
    version        integer     NOT NULL CHECK (version > 0),
    session_id     uuid        NOT NULL UNIQUE REFERENCES training_sessions (session_id),
    -- Trees, subsample size and seed.
    params         jsonb       NOT NULL,
    -- The features, in order, each with its name, kind and where it comes from.
    feature_schema jsonb       NOT NULL,
    -- The trained model: the categorical values' shares and the forest (the engine's own
    -- format; read back and checked on load).
    model          jsonb       NOT NULL,
    -- Rows trained on and the spread of their scores.
    summary        jsonb       NOT NULL,
    trained_at     timestamptz NOT NULL DEFAULT now(),
    trained_by     text        NOT NULL,
    PRIMARY KEY (tenant_id, scope, version)
);
COMMENT ON TABLE anomaly_models IS 'Anomaly model versions per tenant and scope; the highest version is the one that scores live events.';

-- The anomaly score policy was given for each judged event, and the model version that gave it:
-- columns of the decision, which is written anyway, rather than a row and an index more per event.
-- NULL when no model scored the event. Nullable and unchecked, so adding them rewrites and scans
-- no partition of a large decisions table.
ALTER TABLE decisions
    ADD COLUMN anomaly_score         double precision,
    ADD COLUMN anomaly_model_version integer;
COMMENT ON COLUMN decisions.anomaly_score IS 'The event''s anomaly score in (0, 1] that policy saw as input.context.anomaly_score; NULL when no model scored it.';

-- The decision log shows it too (new columns go last, as CREATE OR REPLACE VIEW requires).
CREATE OR REPLACE VIEW decision_log AS
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
       d.decision_id,
       d.anomaly_score
FROM decisions d
JOIN events e ON e.tenant_id = d.tenant_id AND e.event_id = d.event_id AND e.event_time = d.event_time;

-- A session started or ended, or a model trained: the engine's actor for that tenant and scope
-- reads its model and session again. Payload: 'tenant/scope'.
CREATE FUNCTION portcullis_anomaly_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_anomaly_models', NEW.tenant_id || '/' || NEW.scope);
    RETURN NULL;
END;
$$;

CREATE TRIGGER training_sessions_notify
    AFTER INSERT OR UPDATE OF state ON training_sessions
    FOR EACH ROW EXECUTE FUNCTION portcullis_anomaly_notify();

CREATE TRIGGER anomaly_models_notify
    AFTER INSERT ON anomaly_models
    FOR EACH ROW EXECUTE FUNCTION portcullis_anomaly_notify();
