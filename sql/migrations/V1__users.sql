-- Users of the API. A user is whoever holds a bearer token; the token itself
-- is never stored, only its SHA-256, so a leaked database does not leak
-- working credentials. The hash is unique so a token maps to one user.
CREATE TABLE users (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT        NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    token_hash  BYTEA       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
