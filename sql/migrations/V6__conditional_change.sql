-- Conditional writes, deletes and a daily quota of new sessions: the write
-- (sql/functions/apply_email_session_change.sql) grew three ways, and this is
-- what they need of the schema. (They arrived together, before anything had
-- applied them outside throwaway clusters, so they are one migration.)
--
-- 1. Conditional requests (RFC 9110 If-Match / If-None-Match, ETag = version)
--    are judged by the write on the row read under its lock: no schema change.
-- 2. Sessions can be deleted: a row may vanish between the look that found it
--    and its lock, and the write creates it again: no schema change.
-- 3. A per-user quota of new sessions per UTC day, exact under bursts and
--    across instances: the count lives in this table, one row per user and day,
--    and is taken in the same transaction as the creation under that row's
--    lock (sql/functions/take_new_session_quota.sql). Minted sessions and
--    sessions created by a first PUT both count; updates never do.

CREATE TABLE user_daily_new_sessions (
    user_id  BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day      DATE    NOT NULL,
    created  INTEGER NOT NULL CHECK (created >= 0),
    PRIMARY KEY (user_id, day)
);

-- The write's parameters grew: the old signature goes (the new one is created
-- after the migrations). IF EXISTS: on a new database no migration made it.
DROP FUNCTION IF EXISTS apply_email_session_change(bigint, text, boolean, text, boolean, text[], text[]);
