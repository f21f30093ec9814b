-- The one write: a collapsed batch of one session's requests (or one conditional request), as one
-- statement and so one round trip and one transaction: all of it or none of it.
--
-- It used to be seven statements (BEGIN, create-or-find, lock, replace recipients, bump, COMMIT);
-- the benchmark showed the round trips bounding distinct writes. The guarantees live here:
--   1. Create-or-find through the unique key (user_id, session_id), so concurrent first touches,
--      on any number of instances, make one row and no error. A row we create is born with its
--      content (version 1, or 0 when the change is empty) and stays locked by our insert until
--      commit. A first touch takes a place of the user's daily quota first (its row lock lines up
--      that user's creators); someone else creating the row meanwhile gives the place back.
--   2. An existing row is locked (SELECT ... FOR UPDATE), and everything is decided on what was
--      read under the lock, never on a caller's cache: the precondition, and whether the content
--      changes. So when N writers that all read version v send If-Match: "v" at once, the lock
--      lines them up, the first finds v and applies (v+1), and every later one finds v+1 and fails.
--   3. Only if the content changes: replace the recipients, bump version by exactly one, set
--      updated_at.
--   4. A row deleted between the look that found it and its lock is simply created again
--      (starting afresh at version 1), unless a precondition needs it to exist.
--   5. With p_webhooks, an applied version inserts its webhook event in the same transaction
--      (enqueue_webhook_event), so the event exists exactly when the version does.
--
-- Parameters: a p_set_* flag false leaves that field as stored. p_if_match: the versions If-Match
-- names (NULL: no If-Match); p_if_match_any: If-Match: *; likewise p_if_none_match(_any). An
-- If-Match (even *) needs an existing row; If-None-Match: * an absent one. A failed precondition
-- changes nothing and never creates a row. p_quota: new sessions the user may create per UTC day
-- (<= 0: unlimited). p_webhooks: webhooks are on (webhooks.url is set). The service calls it with
-- named arguments (storage/sessions.rs).
--
-- Returns one row: quota_exceeded or precondition_failed (then nothing changed), else created,
-- applied and the content as of this transaction.
CREATE OR REPLACE FUNCTION apply_email_session_change(
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
    p_quota               integer,
    p_webhooks            boolean)
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
    -- Version 0 is a session created empty: no content, no event.
    IF p_webhooks AND locked.version >= 1 THEN
        PERFORM enqueue_webhook_event(
            p_session_row_id => locked.id, p_user_id => p_user_id, p_session_id => p_session_id,
            p_kind => 'email_session.updated', p_version => locked.version,
            p_subject => next_subject, p_emails => next_emails, p_names => next_names,
            p_session_created_at => locked.created_at, p_session_updated_at => locked.updated_at);
    END IF;
    RETURN QUERY SELECT false, false, was_created, was_created = false OR locked.version = 1, locked.version,
                        next_subject, next_emails, next_names, locked.created_at, locked.updated_at;
END
$$;
