-- Anomalies and trust (issue 18): each model line's settings, the events scored at or above its
-- threshold with the features that made them unusual, and each principal's and agent's trust.
-- Analysts: docs/schema.md; how they are computed: docs/anomaly-models.md.

-- Per tenant and scope; a line without a row uses the defaults (threshold 0.7, half-life 1 h).
CREATE TABLE anomaly_settings (
    tenant_id            text             NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    scope                text             NOT NULL CHECK (scope IN ('cloudtrail', 'device')),
    threshold            double precision NOT NULL CHECK (threshold > 0.5 AND threshold < 1),
    trust_half_life_secs integer          NOT NULL
                                          CHECK (trust_half_life_secs BETWEEN 60 AND 2592000),
    updated_at           timestamptz      NOT NULL DEFAULT now(),
    updated_by           text             NOT NULL,
    PRIMARY KEY (tenant_id, scope)
);
COMMENT ON TABLE anomaly_settings IS 'Per model line: the score from which an event is an anomaly, and the half-life of lost trust. No row: threshold 0.7, half-life 3600 s.';

CREATE TRIGGER anomaly_settings_notify
    AFTER INSERT OR UPDATE ON anomaly_settings
    FOR EACH ROW EXECUTE FUNCTION portcullis_anomaly_notify();

-- One row per judged event scored at or above its line's threshold, written in the same
-- transaction as its decision; keyed by the event, so a redelivered one is stored once.
CREATE TABLE anomalies (
    tenant_id     text             NOT NULL,
    event_id      text             NOT NULL,
    event_time    timestamptz      NOT NULL,
    scope         text             NOT NULL CHECK (scope IN ('cloudtrail', 'device')),
    -- The principal (CloudTrail) or the agent (devices) whose trust it lowered.
    subject       text             NOT NULL,
    action        text             NOT NULL,
    score         double precision NOT NULL,
    threshold     double precision NOT NULL,
    model_version integer          NOT NULL,
    -- The features that set it apart, most telling first: [{feature, value, weight,
    -- training_share}] (docs/anomaly-models.md, "Anomalies").
    unusual       jsonb            NOT NULL,
    -- The subject's trust once this event was counted.
    trust         smallint         NOT NULL CHECK (trust BETWEEN 0 AND 100),
    detected_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id, event_time)
);
CREATE INDEX anomalies_recent_idx ON anomalies (tenant_id, detected_at DESC);
CREATE INDEX anomalies_subject_idx ON anomalies (tenant_id, subject, event_time DESC);
COMMENT ON TABLE anomalies IS 'Events scored at or above their model line''s threshold, with the features that made them unusual.';

-- Each subject's distrust as of its latest counted event. Trust at another time decays from
-- here: 100 × (1 − risk × 2^(−Δt / half-life)). Subjects never anomalous have no row (trust 100).
CREATE TABLE trust_scores (
    tenant_id    text             NOT NULL,
    subject_kind text             NOT NULL CHECK (subject_kind IN ('principal', 'agent')),
    subject      text             NOT NULL,
    risk         double precision NOT NULL CHECK (risk >= 0 AND risk <= 1),
    -- Trust from 0 to 100 at as_of.
    trust        smallint         NOT NULL CHECK (trust BETWEEN 0 AND 100),
    as_of        timestamptz      NOT NULL,
    -- Orders one line's changes: a write only replaces an earlier one.
    seq          bigint           NOT NULL,
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject_kind, subject)
);
CREATE INDEX trust_scores_lowest_idx ON trust_scores (tenant_id, trust);
COMMENT ON TABLE trust_scores IS 'Trust per principal and per agent (0–100) as of its latest counted event; docs/anomaly-models.md, "Trust scores".';
