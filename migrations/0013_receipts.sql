-- Evidence (issue 19): every decision's receipt in an append-only Merkle log per tenant, the
-- log's stored hashes, and its signed checkpoints. How to verify: docs/evidence.md; for
-- analysts: docs/schema.md.

-- One row per tenant: how many receipts its log holds. Writers add to `size` in the
-- transaction that stores the receipts, so the row lock orders leaf indexes as commits happen.
CREATE TABLE receipt_logs (
    tenant_id  text        PRIMARY KEY,
    size       bigint      NOT NULL CHECK (size >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE receipt_logs IS 'Per tenant: the number of receipts in its log (the next leaf index).';

-- The receipts. `body` is the exact text hashed into the log (JSON, docs/evidence.md);
-- reformatting it breaks verification, which is the point. No index on time: a time is
-- found through the checkpoints (`signed_at`), which keeps each receipt's write to two.
CREATE TABLE receipts (
    tenant_id   text        NOT NULL,
    leaf_index  bigint      NOT NULL CHECK (leaf_index >= 0),
    decision_id uuid        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('event', 'query')),
    subject     text        NOT NULL,
    outcome     text        NOT NULL,
    body        text        NOT NULL,
    -- SHA-256(0x00 || body): the RFC 6962 leaf hash.
    leaf_hash   bytea       NOT NULL CHECK (length(leaf_hash) = 32),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, leaf_index),
    UNIQUE (tenant_id, decision_id)
);
COMMENT ON TABLE receipts IS 'One receipt per decision (stream and API), at its leaf index in the tenant''s log. Append-only.';

-- The log's tree: the hash of every complete subtree, as runs. A row holds the hashes of
-- consecutive nodes of one level (`level` 0 being the leaves; a node of level l covers 2^l
-- leaves), 32 bytes each, from `first_node` on: a checkpoint stores one run per level for the
-- receipts it seals. Proofs are read from here.
CREATE TABLE receipt_hashes (
    tenant_id  text     NOT NULL,
    level      smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    first_node bigint   NOT NULL CHECK (first_node >= 0),
    hashes     bytea    NOT NULL CHECK (length(hashes) > 0 AND length(hashes) % 32 = 0),
    PRIMARY KEY (tenant_id, level, first_node)
);
COMMENT ON TABLE receipt_hashes IS 'Hashes of the complete subtrees of each tenant''s receipt log (RFC 6962), in runs of consecutive nodes per level; what proofs are made of.';

-- Signed checkpoints, one per size: a log never signs two trees of one size.
CREATE TABLE receipt_checkpoints (
    tenant_id text        NOT NULL,
    size      bigint      NOT NULL CHECK (size > 0),
    root      bytea       NOT NULL CHECK (length(root) = 32),
    -- The C2SP signed note, exactly as signed.
    note      text        NOT NULL,
    signed_by text        NOT NULL,
    signed_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, size)
);
CREATE INDEX receipt_checkpoints_time_idx ON receipt_checkpoints (tenant_id, signed_at);
COMMENT ON TABLE receipt_checkpoints IS 'Signed checkpoints (C2SP tlog-checkpoint in a signed note) of each tenant''s receipt log.';

-- Every key that has signed checkpoints, by `<name>+<id>`; retired keys stay, so old
-- checkpoints still verify.
CREATE TABLE evidence_keys (
    key_label  text        PRIMARY KEY,
    public_key text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz
);
COMMENT ON TABLE evidence_keys IS 'Public keys (C2SP signed-note verifier keys) that sign receipt checkpoints.';

-- Receipts, hashes and checkpoints are never changed or removed by Portcullis. The triggers
-- refuse it from anyone else too; one who gets past them is caught by `portcullis verify`.
CREATE FUNCTION portcullis_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: its rows are evidence', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER receipts_append_only BEFORE UPDATE OR DELETE ON receipts
    FOR EACH ROW EXECUTE FUNCTION portcullis_append_only();
CREATE TRIGGER receipt_hashes_append_only BEFORE UPDATE OR DELETE ON receipt_hashes
    FOR EACH ROW EXECUTE FUNCTION portcullis_append_only();
CREATE TRIGGER receipt_checkpoints_append_only BEFORE UPDATE OR DELETE ON receipt_checkpoints
    FOR EACH ROW EXECUTE FUNCTION portcullis_append_only();
CREATE TRIGGER receipts_no_truncate BEFORE TRUNCATE ON receipts
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_append_only();
CREATE TRIGGER receipt_hashes_no_truncate BEFORE TRUNCATE ON receipt_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_append_only();
CREATE TRIGGER receipt_checkpoints_no_truncate BEFORE TRUNCATE ON receipt_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_append_only();
