-- Bearer tokens for the HTTP API and the console. Only a token's SHA-256 is kept: the token
-- itself is shown once, when it is made, and cannot be recovered from this table.
CREATE TABLE api_tokens (
    token_id      uuid PRIMARY KEY,
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    secret_sha256 bytea       NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    hint          text        NOT NULL,
    scopes        text[]      NOT NULL CHECK (cardinality(scopes) > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text        NOT NULL,
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
COMMENT ON TABLE api_tokens IS 'Bearer tokens: name, scopes (admin, query:<tenant>, read:<tenant>, admin:<tenant>), expiry, last use (to within a minute) and revocation. Only the SHA-256 of each token is stored.';
COMMENT ON COLUMN api_tokens.hint IS 'The token''s last four characters, to tell tokens apart.';
COMMENT ON COLUMN api_tokens.created_by IS 'Who made it: "cli" (portcullis token create), "demo", or "token:<name>" for the API.';

-- Engines cache tokens they have checked; a change that takes access away (revocation, new
-- scopes or expiry, deletion) tells them at once, whoever makes it, even by hand in psql.
CREATE FUNCTION portcullis_api_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_api_tokens', OLD.token_id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER api_tokens_changed
    AFTER UPDATE OF revoked_at, scopes, expires_at, secret_sha256 OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION portcullis_api_tokens_changed();
