-- One row per (user, session ID). The unique constraint is what makes the
-- first touch of a session a create-or-find (INSERT ... ON CONFLICT DO
-- NOTHING) instead of a find-then-insert race: however many requests or
-- service instances touch a new session at once, exactly one row exists.
-- Session IDs are namespaced per user, so the same ID under two users is
-- two unrelated sessions.
CREATE TABLE email_sessions (
    id                  BIGSERIAL PRIMARY KEY,
    user_id             BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id          TEXT        NOT NULL CHECK (session_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    subject             TEXT,
    -- Grows by exactly 1 per applied change of content; a duplicate request
    -- does not bump it. Writers change it only under the row lock.
    version             BIGINT      NOT NULL DEFAULT 0 CHECK (version >= 0),
    -- SHA-256 of the content (subject + ordered recipients) so a writer can
    -- tell "nothing changed" without reloading the recipient rows.
    content_fingerprint BYTEA       NOT NULL CHECK (length(content_fingerprint) = 32),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT email_sessions_user_session_key UNIQUE (user_id, session_id)
);

-- The recipient list of a session, in the order the plugin sent it. The
-- unique index on the lower-cased address is the database's own guarantee
-- that no session ever lists an address twice, whatever the code does.
CREATE TABLE email_session_recipients (
    session_row_id  BIGINT NOT NULL REFERENCES email_sessions (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL CHECK (position >= 0),
    email           TEXT    NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    display_name    TEXT,
    PRIMARY KEY (session_row_id, position)
);

CREATE UNIQUE INDEX email_session_recipients_address_key
    ON email_session_recipients (session_row_id, lower(email));
