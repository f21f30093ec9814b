-- Two ways to be a user from now on:
--   * an identity of a configured OpenID Connect issuer, known by (issuer, subject) and
--     provisioned on its first request;
--   * API tokens an operator creates, several per user, each named, expiring and revocable.

-- A user provisioned from an identity has no operator-chosen name.
ALTER TABLE users ALTER COLUMN name DROP NOT NULL;

-- The primary key is what makes first contact safe: concurrent first requests of one identity,
-- on any number of instances, all go through INSERT ... ON CONFLICT on it and end with one user.
CREATE TABLE identities (
    issuer      TEXT        NOT NULL CHECK (length(issuer) BETWEEN 1 AND 1000),
    subject     TEXT        NOT NULL CHECK (length(subject) BETWEEN 1 AND 1000),
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX identities_user_id ON identities (user_id);

-- A token is `<id>.<secret>`: the id finds the row, and the SHA-256 of the secret is compared
-- with secret_hash in constant time. The secret itself is never stored.
CREATE TABLE api_tokens (
    id            BIGSERIAL   PRIMARY KEY,
    user_id       BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    secret_hash   BYTEA       NOT NULL CHECK (length(secret_hash) = 32),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ,
    -- Written at most once per token cache period per instance, not on every request.
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);
-- Names tell a user's live tokens apart; a revoked token's name may be used again.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (user_id, name) WHERE revoked_at IS NULL;

-- Every token issued so far was `<user id>.<secret>`. Each becomes the token whose id is that
-- user id, so it keeps working unchanged; new tokens take ids above all of them.
INSERT INTO api_tokens (id, user_id, name, secret_hash, created_at)
SELECT id, id, 'first token', token_hash, created_at FROM users;
SELECT setval(pg_get_serial_sequence('api_tokens', 'id'),
              greatest((SELECT max(id) FROM api_tokens), 1),
              (SELECT max(id) FROM api_tokens) IS NOT NULL);
-- Expand, then contract: instances of the previous release still verify `<user id>.<secret>`
-- against users.token_hash while a rolling upgrade replaces them, so the column stays until a
-- later migration drops it. Rows written from now on get 32 zero bytes, the hash of no secret
-- anyone knows, so those instances refuse (401) every token of a new user instead of failing on
-- a NULL, and `token revoke` writes the same over a legacy token's hash.
ALTER TABLE users ALTER COLUMN token_hash SET DEFAULT decode(repeat('00', 32), 'hex');
COMMENT ON COLUMN users.token_hash IS
    'Deprecated by V7 (tokens live in api_tokens): read only by instances older than V7, dropped later';
