-- A failed replay used to overwrite `reason`, losing why the input was set aside in the first
-- place. `reason` now stays the original cause; the latest replay failure has its own column.
ALTER TABLE dead_letters ADD COLUMN last_replay_error text;
COMMENT ON COLUMN dead_letters.reason IS 'Why the input was set aside when it first failed; never overwritten.';
COMMENT ON COLUMN dead_letters.last_replay_error IS 'Why the latest `portcullis dlq replay` of it failed; NULL if never replayed or the replay succeeded.';
