-- Approval requests opened by an agent's event (docs/approvals.md, "Agents"): the agent to tell
-- of the answer over MQTT.

ALTER TABLE approvals DROP CONSTRAINT approvals_source_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_source_check
    CHECK (source IN ('api', 'gateway', 'agent'));
ALTER TABLE approvals ADD COLUMN agent_id text;
ALTER TABLE approvals ADD CONSTRAINT approvals_agent_check
    CHECK ((source = 'agent') = (agent_id IS NOT NULL));
-- What an engine reading again the answers it may have missed looks for.
CREATE INDEX approvals_agent_answers ON approvals (answered_at) WHERE source = 'agent';
