-- The transactional outbox of webhooks: the transaction that applies version v of a session (or
-- deletes it) inserts its event here, so an event exists exactly when its change committed, and
-- the delivery loop of any instance sends it afterwards, however many times it takes.
--
-- One event per (session row, kind, version): the unique key makes a second one impossible on
-- any number of instances. The session row's own id (not its user and session ID) is the key,
-- because a session deleted and written again starts afresh at version 1 under a new row.
--
-- Per session (user_id, session_id) events are sent in id order, which is commit order: each is
-- inserted under the session's row lock. Only the oldest undelivered event of a session is ever
-- due (next_attempt_at set); the ones behind it wait with next_attempt_at NULL, and whoever
-- finishes the oldest (delivered or given up) makes the next one due, in one transaction (see
-- sql/functions/enqueue_webhook_event.sql and the delivery queries in storage/webhooks.rs). So
-- the due index holds one entry per waiting session, and a sweep costs the same whatever the
-- backlog behind them.
--
-- A claim moves next_attempt_at to the end of its lease and records a lease token: an instance
-- that dies mid-attempt loses the event when the lease ends, and its late report, if any, no
-- longer matches the token.
CREATE TABLE webhook_events (
    id              BIGSERIAL   PRIMARY KEY,
    session_row_id  BIGINT      NOT NULL,
    user_id         BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id      TEXT        NOT NULL,
    kind            TEXT        NOT NULL
                    CHECK (kind IN ('email_session.updated', 'email_session.deleted')),
    version         BIGINT      NOT NULL,
    -- The content of that version, frozen at commit (NULL for a deletion).
    subject         TEXT,
    emails          TEXT[],
    names           TEXT[],
    session_created_at TIMESTAMPTZ,
    session_updated_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    lease_token     BIGINT,
    last_error      TEXT,
    delivered_at    TIMESTAMPTZ,
    dead_at         TIMESTAMPTZ,
    CONSTRAINT webhook_events_one_per_version UNIQUE (session_row_id, kind, version)
);

-- What is due, soonest first.
CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at IS NOT NULL;

-- A session's undelivered events, oldest first: the next one to make due, and the newest one
-- a new event lines up behind.
CREATE INDEX webhook_events_session_queue ON webhook_events (user_id, session_id, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL;

-- Delivered events are deleted after webhooks.keep_delivered_days.
CREATE INDEX webhook_events_delivered ON webhook_events (delivered_at)
    WHERE delivered_at IS NOT NULL;

-- The endpoint's state: a 410 Gone pauses delivery until an operator resumes it. One row.
CREATE TABLE webhook_endpoint (
    singleton   BOOLEAN     PRIMARY KEY DEFAULT true CHECK (singleton),
    paused_at   TIMESTAMPTZ,
    paused_why  TEXT
);
INSERT INTO webhook_endpoint DEFAULT VALUES;

-- The write function gains p_webhooks; CREATE OR REPLACE cannot change a parameter list, so the
-- 12-parameter one goes (sql/functions/ creates the new one after this).
DROP FUNCTION IF EXISTS apply_email_session_change(bigint, text, boolean, text, boolean, text[],
    text[], bigint[], boolean, bigint[], boolean, integer);
