-- Every committed segment version wakes the engine's sender at once (NOTIFY is delivered at
-- commit, so a rolled-back publish wakes no one); a sweep on start and every
-- distribution.resend_secs catches what was published while no engine listened.
CREATE FUNCTION portcullis_segment_version_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_segment_versions', NEW.tenant_id || '/' || NEW.segment_id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER segment_versions_notify
    AFTER INSERT ON segment_versions
    FOR EACH ROW EXECUTE FUNCTION portcullis_segment_version_notify();

-- Segment ids are Rego package names (segments.<id>) as tenant ids are: no '-'.
ALTER TABLE segment_rules DROP CONSTRAINT segment_rules_segment_id_check,
    ADD CONSTRAINT segment_rules_segment_id_check CHECK (segment_id ~ '^[a-z][a-z0-9_]{0,62}$');
ALTER TABLE segments DROP CONSTRAINT segments_segment_id_check,
    ADD CONSTRAINT segments_segment_id_check CHECK (segment_id ~ '^[a-z][a-z0-9_]{0,62}$');
