-- The multi-tenant policy service: bundle activations and the decision API's decision log.

-- Every bundle revision that became the serving policy of a tenant, in order. A refused bundle
-- is not here (it never served); its error is in the engine's /v1/bundles and metrics.
CREATE TABLE bundle_activations (
    activation_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     text        NOT NULL,
    revision      text        NOT NULL,
    digest        text        NOT NULL,
    activated_at  timestamptz NOT NULL,
    engine        text        NOT NULL
);
CREATE INDEX bundle_activations_tenant_idx ON bundle_activations (tenant_id, activated_at DESC);
COMMENT ON TABLE bundle_activations IS 'Each policy bundle revision that became a tenant''s serving policy, when, and on which engine process.';
COMMENT ON COLUMN bundle_activations.digest IS 'sha256 over the bundle''s modules, data and mask: changes whenever anything that affects decisions does.';
COMMENT ON COLUMN bundle_activations.engine IS 'The engine process that activated it (host:pid); each engine loads bundles itself.';

-- Decisions answered by the decision API (POST /v1/data/tenants/{tenant}/{path}). Stream
-- decisions stay in `decisions`, whose input is the event they judged (join to `events`).
CREATE TABLE api_decisions (
    decision_id     uuid        NOT NULL,
    tenant_id       text        NOT NULL,
    path            text        NOT NULL,
    input           jsonb,
    erased          text[]      NOT NULL DEFAULT '{}',
    result          jsonb,
    bundle_revision text        NOT NULL,
    eval_micros     integer     NOT NULL,
    decided_at      timestamptz NOT NULL,
    PRIMARY KEY (decision_id, decided_at)
) PARTITION BY RANGE (decided_at);
CREATE INDEX api_decisions_tenant_time_idx ON api_decisions (tenant_id, decided_at DESC);
CREATE TABLE api_decisions_default PARTITION OF api_decisions DEFAULT;
SELECT portcullis_ensure_partitions('api_decisions', now() - interval '1 month', 4);
COMMENT ON TABLE api_decisions IS 'The decision API''s decision log: one row per answered query, with the caller''s input (the tenant''s mask applied).';
COMMENT ON COLUMN api_decisions.input IS 'The input as the caller sent it, minus the fields the tenant''s decision_log.mask erases; without the engine''s input.context.';
COMMENT ON COLUMN api_decisions.erased IS 'JSON pointers (/input/...) removed from input by the mask.';
COMMENT ON COLUMN api_decisions.result IS 'The value returned; NULL when undefined (the API then answers without "result").';
