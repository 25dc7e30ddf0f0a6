-- The sender looks for commands sent long ago without a result every round
-- (compliance.result_timeout_secs): only those still waiting are indexed.
CREATE INDEX remediation_actions_sent ON remediation_actions (sent_at) WHERE status = 'sent';
