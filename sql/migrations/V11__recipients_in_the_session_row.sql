-- A session's recipients move from rows of their own into two arrays of the session row, in the
-- order the plugin sent them: emails[i] with its display name names[i].
--
-- The benchmark showed the recipient rows bounding the write: a first touch with three recipients
-- inserted four heap tuples, nine index entries and four foreign-key checks, and a changed list
-- deleted and re-inserted every row (dead tuples and index entries for vacuum). Now a first touch
-- is one tuple and a change is one UPDATE of the row the write holds locked anyway. Readers get
-- the list without a join, and the content digest goes: it only spared the writer a reload of the
-- recipient rows, and the arrays are now in the row it locks, compared as they are.
--
-- The database still refuses a list that names an address twice: the unique index on
-- (session_row_id, lower(email COLLATE "C")) becomes a CHECK calling
-- email_session_recipients_valid, which also keeps what the old table's columns checked
-- (an address is present and 3 to 254 characters long, one display name per address).
--
-- Two more changes at the end cut what every write pays for the rest of the row: V2's session ID
-- check is reworded, and the write's answer becomes a named row type.

-- email_session_recipients_valid is defined here, not in sql/functions/: it is part of what the
-- constraint means, and PostgreSQL never re-checks stored rows when a function changes. A change
-- to it is a migration that drops the constraint, replaces the function and adds the constraint
-- again (which validates every row). IMMUTABLE, as a CHECK needs. A loop of PL/pgSQL expressions
-- rather than a query over unnest(): every INSERT and UPDATE of a session calls it afresh, and
-- starting that query's executor cost more than the whole loop does for a few addresses. The loop
-- is quadratic: 500 addresses (the most the service accepts) of 200 characters each take about
-- 4 ms, still less than the 500 rows and 1,000 index entries they used to be.
CREATE FUNCTION email_session_recipients_valid(emails text[], names text[])
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    email  text;
    -- lower() under "C" folds ASCII letters only, as the service's de-duplication does (V4).
    folded text[] := '{}';
BEGIN
    IF cardinality(emails) <> cardinality(names) THEN
        RETURN false;
    END IF;
    FOREACH email IN ARRAY emails LOOP
        IF email IS NULL OR length(email) NOT BETWEEN 3 AND 254
           OR lower(email COLLATE "C") = ANY (folded) THEN
            RETURN false;
        END IF;
        folded := array_append(folded, lower(email COLLATE "C"));
    END LOOP;
    RETURN true;
END
$$;

ALTER TABLE email_sessions
    ADD COLUMN emails text[] NOT NULL DEFAULT '{}',
    ADD COLUMN names  text[] NOT NULL DEFAULT '{}';

UPDATE email_sessions s
SET emails = r.emails, names = r.names
FROM (SELECT session_row_id,
             array_agg(email ORDER BY position) AS emails,
             array_agg(display_name ORDER BY position) AS names
      FROM email_session_recipients
      GROUP BY session_row_id) r
WHERE r.session_row_id = s.id;

ALTER TABLE email_sessions
    ADD CONSTRAINT email_sessions_recipients_valid
    CHECK (email_session_recipients_valid(emails, names));

DROP TABLE email_session_recipients;

-- Instances of the previous release, still serving while a rolling upgrade replaces them, read
-- recipients by joining this name (the write, the mint and the delete they call are this
-- release's functions already). Nothing of this release reads it; a later migration drops it.
CREATE VIEW email_session_recipients AS
SELECT s.id AS session_row_id, (r.ord - 1)::integer AS position, r.email, r.display_name
FROM email_sessions s
CROSS JOIN LATERAL unnest(s.emails, s.names) WITH ORDINALITY AS r(email, display_name, ord);

ALTER TABLE email_sessions DROP COLUMN content_fingerprint;
DROP FUNCTION IF EXISTS email_session_fingerprint(text, text[], text[]);

-- V2's session ID check, said another way: under PostgreSQL's regex engine the bounded repetition
-- {1,64} cost about 70,000 instructions per insert (callgrind), more than a third of a whole locked
-- one-row update; one or more of the same characters, and at most 64 of them, is the same rule.
ALTER TABLE email_sessions
    DROP CONSTRAINT email_sessions_session_id_check,
    ADD CONSTRAINT email_sessions_session_id_check
        CHECK (session_id ~ '^[A-Za-z0-9_-]+$' AND length(session_id) <= 64);

-- The write's answer becomes a named row type (sql/functions/apply_email_session_change.sql says
-- why). CREATE OR REPLACE cannot change a function's result type, so the RETURNS TABLE one goes;
-- sql/functions/ creates the new one after this.
DROP FUNCTION IF EXISTS apply_email_session_change(bigint, text, boolean, text, boolean, text[],
    text[], bigint[], boolean, bigint[], boolean, integer, boolean);
CREATE TYPE email_session_change_result AS (
    quota_exceeded      boolean,
    precondition_failed boolean,
    created             boolean,
    applied             boolean,
    version             bigint,
    subject             text,
    emails              text[],
    names               text[],
    created_at          timestamptz,
    updated_at          timestamptz
);
