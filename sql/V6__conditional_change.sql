-- Conditional writes, deletes and a daily quota of new sessions: the write of
-- V3, grown three ways. (They arrived together, before anything had applied
-- them outside throwaway clusters, so they are one migration.)
--
-- 1. Conditional requests (RFC 9110 If-Match / If-None-Match, ETag = version),
--    judged here, on the row read under its lock, so they hold across service
--    instances: when N writers that all read version v send If-Match: "v" at
--    once, the row lock lines them up, the first finds v and applies (v+1), and
--    every later one finds v+1 and fails. A failed precondition changes nothing
--    and never creates a row. p_if_match: the versions If-Match names (NULL: no
--    If-Match); p_if_match_any: If-Match: *. Likewise p_if_none_match(_any).
--    An If-Match (even *) needs an existing row; If-None-Match: * an absent one.
-- 2. Sessions can be deleted (DELETE /api/email/sessions/{id}), so a row may
--    vanish between the look that found it and its lock: an unconditional
--    write then creates the session again (starting afresh at version 1), and
--    only a write that needs the row (If-Match) fails.
-- 3. A per-user quota of new sessions per UTC day, exact under bursts and
--    across instances: the count lives here and is taken in the same
--    transaction as the creation, under the lock of the user's row for the
--    day, so several requests taking "the last place" at once line up and only
--    one gets it. Minted sessions and sessions created by a first PUT both
--    count; updates of existing sessions never do. p_quota <= 0 (or NULL)
--    means unlimited.
--
-- Otherwise the same write as V3: create-or-find through the unique key, lock,
-- compare digests, replace recipients and bump the version only on a change
-- of content.

CREATE TABLE user_daily_new_sessions (
    user_id  BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day      DATE    NOT NULL,
    created  INTEGER NOT NULL CHECK (created >= 0),
    PRIMARY KEY (user_id, day)
);

-- Takes one place of today's quota; false when none is left.
CREATE FUNCTION take_new_session_quota(p_user_id bigint, p_quota integer)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    taken integer;
BEGIN
    IF p_quota IS NULL OR p_quota <= 0 THEN
        RETURN true;
    END IF;
    INSERT INTO user_daily_new_sessions AS q (user_id, day, created)
    VALUES (p_user_id, (now() AT TIME ZONE 'UTC')::date, 1)
    ON CONFLICT (user_id, day) DO UPDATE SET created = q.created + 1
    WHERE q.created < p_quota
    RETURNING q.created INTO taken;
    RETURN FOUND;
END
$$;

-- Gives a place back (the session it was taken for was created by someone else).
CREATE FUNCTION give_back_new_session_quota(p_user_id bigint, p_quota integer)
RETURNS void
LANGUAGE sql
AS $$
    UPDATE user_daily_new_sessions
    SET created = created - 1
    WHERE p_quota > 0 AND user_id = p_user_id AND day = (now() AT TIME ZONE 'UTC')::date
      AND created > 0
$$;

-- Mints an empty session under a fresh ID if the quota allows: 'created',
-- 'taken' (the ID exists; pick another) or 'quota_exceeded'.
CREATE FUNCTION mint_email_session(p_user_id bigint, p_session_id text, p_quota integer)
RETURNS TABLE (outcome text, created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    minted email_sessions%ROWTYPE;
BEGIN
    IF NOT take_new_session_quota(p_user_id, p_quota) THEN
        RETURN QUERY SELECT 'quota_exceeded', NULL::timestamptz, NULL::timestamptz;
        RETURN;
    END IF;
    INSERT INTO email_sessions (user_id, session_id, content_fingerprint)
    VALUES (p_user_id, p_session_id, email_session_fingerprint(NULL, '{}', '{}'))
    ON CONFLICT (user_id, session_id) DO NOTHING
    RETURNING * INTO minted;
    IF NOT FOUND THEN
        PERFORM give_back_new_session_quota(p_user_id, p_quota);
        RETURN QUERY SELECT 'taken', NULL::timestamptz, NULL::timestamptz;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'created', minted.created_at, minted.updated_at;
END
$$;

DROP FUNCTION apply_email_session_change(bigint, text, boolean, text, boolean, text[], text[]);

CREATE FUNCTION apply_email_session_change(
    p_user_id             bigint,
    p_session_id          text,
    p_set_subject         boolean,
    p_subject             text,
    p_set_recipients      boolean,
    p_emails              text[],
    p_names               text[],
    p_if_match            bigint[],
    p_if_match_any        boolean,
    p_if_none_match       bigint[],
    p_if_none_match_any   boolean,
    p_quota               integer)
RETURNS TABLE (
    quota_exceeded      boolean,
    precondition_failed boolean,
    created             boolean,
    applied             boolean,
    version             bigint,
    subject             text,
    emails              text[],
    names               text[],
    created_at          timestamptz,
    updated_at          timestamptz)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    locked        email_sessions%ROWTYPE;
    needs_row     boolean := p_if_match_any OR p_if_match IS NOT NULL;
    was_created   boolean := false;
    next_subject  text;
    next_emails   text[];
    next_names    text[];
    next_digest   bytea;
BEGIN
    -- Create-or-find, and lock. A row deleted between a failed insert (it existed) and the
    -- lock is simply created again, unless a precondition needs it to exist.
    LOOP
        -- An existing row is locked, and costs no quota.
        SELECT * INTO locked
        FROM email_sessions
        WHERE user_id = p_user_id AND session_id = p_session_id
        FOR UPDATE;
        EXIT WHEN FOUND;
        IF needs_row THEN
            RETURN QUERY SELECT false, true, false, false, NULL::bigint, NULL::text, NULL::text[],
                                NULL::text[], NULL::timestamptz, NULL::timestamptz;
            RETURN;
        END IF;
        -- First touch: take a place of today's quota first (its row lock lines up this
        -- user's creators), then create the row, born with the change applied to empty
        -- content. Someone else creating it meanwhile gives the place back.
        IF NOT take_new_session_quota(p_user_id, p_quota) THEN
            -- Waiting for the quota row may have been waiting for this very session's
            -- creator (a duplicate of this request): then it exists now, and this is an
            -- update, which the quota never refuses.
            SELECT * INTO locked
            FROM email_sessions
            WHERE user_id = p_user_id AND session_id = p_session_id
            FOR UPDATE;
            EXIT WHEN FOUND;
            RETURN QUERY SELECT true, false, false, false, NULL::bigint, NULL::text, NULL::text[],
                                NULL::text[], NULL::timestamptz, NULL::timestamptz;
            RETURN;
        END IF;
        next_subject := CASE WHEN p_set_subject THEN p_subject END;
        next_emails := CASE WHEN p_set_recipients THEN p_emails ELSE '{}' END;
        next_names := CASE WHEN p_set_recipients THEN p_names ELSE '{}' END;
        next_digest := email_session_fingerprint(next_subject, next_emails, next_names);
        INSERT INTO email_sessions (user_id, session_id, subject, version, content_fingerprint)
        VALUES (p_user_id, p_session_id, next_subject,
                CASE WHEN next_digest = email_session_fingerprint(NULL, '{}', '{}') THEN 0 ELSE 1 END,
                next_digest)
        ON CONFLICT (user_id, session_id) DO NOTHING
        RETURNING * INTO locked;
        was_created := FOUND;
        EXIT WHEN was_created;
        PERFORM give_back_new_session_quota(p_user_id, p_quota);
    END LOOP;

    IF NOT was_created THEN
        IF (p_if_match IS NOT NULL AND NOT p_if_match_any AND NOT (locked.version = ANY (p_if_match)))
           OR p_if_none_match_any
           OR (p_if_none_match IS NOT NULL AND locked.version = ANY (p_if_none_match)) THEN
            RETURN QUERY SELECT false, true, false, false, locked.version, NULL::text, NULL::text[],
                                NULL::text[], NULL::timestamptz, NULL::timestamptz;
            RETURN;
        END IF;

        next_subject := CASE WHEN p_set_subject THEN p_subject ELSE locked.subject END;
        IF p_set_recipients THEN
            next_emails := p_emails;
            next_names := p_names;
        ELSE
            SELECT coalesce(array_agg(r.email ORDER BY r.position), '{}'),
                   coalesce(array_agg(r.display_name ORDER BY r.position), '{}')
            INTO next_emails, next_names
            FROM email_session_recipients r
            WHERE r.session_row_id = locked.id;
        END IF;
        next_digest := email_session_fingerprint(next_subject, next_emails, next_names);
        IF next_digest = locked.content_fingerprint THEN
            RETURN QUERY SELECT false, false, false, false, locked.version, locked.subject,
                                next_emails, next_names, locked.created_at, locked.updated_at;
            RETURN;
        END IF;

        IF p_set_recipients THEN
            DELETE FROM email_session_recipients WHERE session_row_id = locked.id;
        END IF;
        UPDATE email_sessions
        SET subject = next_subject,
            content_fingerprint = next_digest,
            version = email_sessions.version + 1,
            updated_at = now()
        WHERE id = locked.id
        RETURNING email_sessions.version, email_sessions.updated_at
        INTO locked.version, locked.updated_at;
    END IF;

    IF p_set_recipients THEN
        INSERT INTO email_session_recipients (session_row_id, position, email, display_name)
        SELECT locked.id, r.ord - 1, r.email, r.display_name
        FROM unnest(next_emails, next_names) WITH ORDINALITY AS r(email, display_name, ord);
    END IF;
    RETURN QUERY SELECT false, false, was_created, was_created = false OR locked.version = 1, locked.version,
                        next_subject, next_emails, next_names, locked.created_at, locked.updated_at;
END
$$;
