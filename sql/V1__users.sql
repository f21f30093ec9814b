-- Users of the API. A user is whoever holds a bearer token, `<id>.<secret>`:
-- the ID finds the row, and only the SHA-256 of the secret is stored (and
-- compared in constant time), so a leaked database does not leak working
-- credentials. The hash's UNIQUE constraint is not how a token finds its user.
CREATE TABLE users (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT        NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    token_hash  BYTEA       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
