-- The decision API's log keeps failed queries too: a query stopped by the evaluation time limit
-- or broken by its rule is answered 500 and logged with why, so the log holds every answered
-- query, decisions and failures alike.
ALTER TABLE api_decisions ADD COLUMN error text;
COMMENT ON COLUMN api_decisions.error IS 'Why the evaluation failed (time limit, a broken rule); NULL for a decision. A failed query has no result.';
