-- Remediation on request (docs/compliance.md, "Remediation"): besides the action a violation's
-- opening asks for (request 0 of its open period), a person may ask for another, for instance
-- after a dry run or a failure since fixed. At most one action of a violation waits for a
-- result at a time; the request path checks that under the violation's row lock.
ALTER TABLE remediation_actions
    ADD COLUMN request      integer NOT NULL DEFAULT 0,
    ADD COLUMN requested_by text;
ALTER TABLE remediation_actions DROP CONSTRAINT remediation_actions_violation_id_open_period_key;
ALTER TABLE remediation_actions
    ADD CONSTRAINT remediation_actions_once UNIQUE (violation_id, open_period, request);
