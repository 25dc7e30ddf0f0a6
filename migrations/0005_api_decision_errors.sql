-- The decision API's log keeps failed queries too: a query stopped by the evaluation time limit
-- or failed by its rule is answered 500 and logged with why, so the log holds every decision and
-- every failure of one.
-- Adding a nullable column without a default changes only the catalogue, for every partition;
-- the lock it needs must not wait behind a long analyst query for ever.
SET LOCAL lock_timeout = '10s';
ALTER TABLE api_decisions ADD COLUMN IF NOT EXISTS error text;
COMMENT ON COLUMN api_decisions.error IS 'Why the evaluation failed (time limit, a failing rule), at most 1 KiB, and it may quote the input; NULL for a decision. A failed query has no result.';
COMMENT ON COLUMN api_decisions.result IS 'The value returned; NULL when undefined (the API then answers without "result") or when the evaluation failed (see error).';
