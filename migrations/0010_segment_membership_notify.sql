-- A segmentation rule added or removed, or an agent enrolled (again) with other groups, changes
-- which segments agents belong to: the engine is told at commit, and tells each agent concerned
-- on its config topic (docs/agent-protocol.md). Payload: {"tenant": ..., "group": ...} or
-- {"tenant": ..., "agent": ...}.
CREATE FUNCTION portcullis_segment_rule_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r segment_rules;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    PERFORM pg_notify('portcullis_segment_membership',
                      json_build_object('tenant', r.tenant_id, 'group', r.group_name)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER segment_rules_notify
    AFTER INSERT OR DELETE ON segment_rules
    FOR EACH ROW EXECUTE FUNCTION portcullis_segment_rule_notify();

CREATE FUNCTION portcullis_enrollment_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_segment_membership',
                      json_build_object('tenant', NEW.tenant_id, 'agent', NEW.agent_id)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER agent_enrollments_notify
    AFTER INSERT OR UPDATE OF groups ON agent_enrollments
    FOR EACH ROW EXECUTE FUNCTION portcullis_enrollment_notify();
