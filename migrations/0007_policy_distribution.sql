-- Policy distribution to edge agents (seed 000): which groups get which segments, each
-- segment's version history (signed, as sent), and the agents with what they apply.

CREATE TABLE segment_rules (
    tenant_id  text        NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    group_name text        NOT NULL CHECK (length(group_name) BETWEEN 1 AND 200),
    segment_id text        NOT NULL CHECK (segment_id ~ '^[a-z][a-z0-9_-]{0,62}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, group_name, segment_id)
);
COMMENT ON TABLE segment_rules IS 'Segmentation: agents in group_name get segment_id''s policy (seed 000: HR group -> HR segment).';

CREATE TABLE segments (
    tenant_id      text        NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    segment_id     text        NOT NULL CHECK (segment_id ~ '^[a-z][a-z0-9_-]{0,62}$'),
    latest_version bigint      NOT NULL DEFAULT 0 CHECK (latest_version >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, segment_id)
);
COMMENT ON TABLE segments IS 'Each segment and its latest published version (0: none yet). Publishing locks this row, so versions are strictly increasing with no gap.';

CREATE TABLE segment_versions (
    tenant_id    text        NOT NULL,
    segment_id   text        NOT NULL,
    version      bigint      NOT NULL CHECK (version > 0),
    modules      jsonb       NOT NULL,
    data         jsonb       NOT NULL,
    digest       text        NOT NULL,
    envelope     jsonb       NOT NULL,
    key_id       text        NOT NULL,
    published_by text        NOT NULL,
    published_at timestamptz NOT NULL,
    sent_at      timestamptz,
    PRIMARY KEY (tenant_id, segment_id, version),
    FOREIGN KEY (tenant_id, segment_id) REFERENCES segments (tenant_id, segment_id) ON DELETE CASCADE
);
CREATE INDEX segment_versions_unsent_idx ON segment_versions (tenant_id, segment_id, version) WHERE sent_at IS NULL;
COMMENT ON TABLE segment_versions IS 'Every version of every segment''s policy: modules and data, digest, the signed DSSE envelope as sent to agents, the signing key id, who published it and when, and when it was sent over MQTT (NULL: published, not sent yet; sent after a restart).';

CREATE TABLE agents (
    tenant_id     text        NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    agent_id      text        NOT NULL CHECK (agent_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'),
    groups        text[]      NOT NULL DEFAULT '{}',
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    online        boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, agent_id)
);
COMMENT ON TABLE agents IS 'Edge agents as they announced themselves: groups, first and last seen, online (from their status and MQTT last will).';

CREATE TABLE agent_segments (
    tenant_id       text        NOT NULL,
    agent_id        text        NOT NULL,
    segment_id      text        NOT NULL,
    applied_version bigint      NOT NULL CHECK (applied_version > 0),
    applied_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, agent_id, segment_id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, agent_id) ON DELETE CASCADE
);
COMMENT ON TABLE agent_segments IS 'The version of each segment an agent reports it enforces; behind segments.latest_version is drift.';
