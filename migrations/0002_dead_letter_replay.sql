-- Dead letters can be re-driven with `portcullis dlq replay` once the cause is fixed. A replayed
-- dead letter is kept, for the audit trail, and marked resolved in the same transaction that
-- stores the rows it finally produced.
ALTER TABLE dead_letters
    ADD COLUMN resolved_at      timestamptz,
    ADD COLUMN replay_attempts  integer NOT NULL DEFAULT 0,
    ADD COLUMN last_replayed_at timestamptz;
CREATE INDEX dead_letters_unresolved_idx ON dead_letters (failed_at) WHERE resolved_at IS NULL;
COMMENT ON COLUMN dead_letters.resolved_at IS 'When a replay stored this input successfully; NULL while it is still unprocessed.';
