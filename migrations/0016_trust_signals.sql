-- External trust signals (docs/signals.md): what other security tools say about a principal
-- or an agent, until it expires.

CREATE TABLE trust_signals (
    -- tenant/source/id when the sender gave an id (sending it again replaces it), else the
    -- Kafka message's place (a redelivery replaces it with itself), else a fresh id.
    signal_key   text        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    subject_kind text        NOT NULL CHECK (subject_kind IN ('principal', 'agent')),
    subject      text        NOT NULL,
    kind         text        NOT NULL,
    severity     text        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    source       text        NOT NULL,
    external_id  text,
    detail       jsonb,
    received_via text        NOT NULL CHECK (received_via IN ('kafka', 'http', 'cli')),
    received_at  timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX trust_signals_lasting ON trust_signals (expires_at);
CREATE INDEX trust_signals_by_tenant ON trust_signals (tenant_id, received_at DESC);
