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
--   3. Only if the content changes: one UPDATE of the locked row, with the new subject and
--      recipients, version bumped by exactly one and updated_at. The recipients are two arrays
--      of that row (emails[i] with names[i]), so an unchanged list costs a comparison and a changed
--      one rewrites no other table; the row's CHECK (email_session_recipients_valid, V11) is
--      what refuses an address listed twice.
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
-- Returns one email_session_change_result (V11): quota_exceeded or precondition_failed (then
-- nothing changed), else created, applied and the content as of this transaction. A named row type
-- rather than RETURNS TABLE, whose row description PostgreSQL rebuilt from the parameter lists on
-- every call; RETURN ROW(...) rather than RETURN QUERY, which ran a query to make one row.
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
RETURNS email_session_change_result
LANGUAGE plpgsql
AS $$
DECLARE
    locked        email_sessions%ROWTYPE;
    needs_row     boolean := p_if_match_any OR p_if_match IS NOT NULL;
    was_created   boolean := false;
    next_subject  text;
    next_emails   text[];
    next_names    text[];
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
            RETURN ROW(false, true, false, false, NULL, NULL, NULL, NULL, NULL,
                       NULL)::email_session_change_result;
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
            RETURN ROW(true, false, false, false, NULL, NULL, NULL, NULL, NULL,
                       NULL)::email_session_change_result;
        END IF;
        next_subject := CASE WHEN p_set_subject THEN p_subject END;
        next_emails := CASE WHEN p_set_recipients THEN coalesce(p_emails, '{}') ELSE '{}' END;
        next_names := CASE WHEN p_set_recipients THEN coalesce(p_names, '{}') ELSE '{}' END;
        INSERT INTO email_sessions (user_id, session_id, subject, emails, names, version)
        VALUES (p_user_id, p_session_id, next_subject, next_emails, next_names,
                CASE WHEN next_subject IS NULL AND next_emails = '{}' AND next_names = '{}'
                     THEN 0 ELSE 1 END)
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
            RETURN ROW(false, true, false, false, locked.version, NULL, NULL, NULL, NULL,
                       NULL)::email_session_change_result;
        END IF;

        next_subject := CASE WHEN p_set_subject THEN p_subject ELSE locked.subject END;
        next_emails := CASE WHEN p_set_recipients THEN coalesce(p_emails, '{}')
                            ELSE locked.emails END;
        next_names := CASE WHEN p_set_recipients THEN coalesce(p_names, '{}')
                           ELSE locked.names END;
        -- The stored content is in the locked row itself, so it is compared as it is: array
        -- equality is element by element, in order, and holds two NULL names equal.
        IF next_subject IS NOT DISTINCT FROM locked.subject
           AND next_emails = locked.emails AND next_names = locked.names THEN
            RETURN ROW(false, false, false, false, locked.version, locked.subject, next_emails,
                       next_names, locked.created_at,
                       locked.updated_at)::email_session_change_result;
        END IF;

        UPDATE email_sessions
        SET subject = next_subject,
            emails = next_emails,
            names = next_names,
            version = email_sessions.version + 1,
            updated_at = now()
        WHERE id = locked.id
        RETURNING email_sessions.version, email_sessions.updated_at
        INTO locked.version, locked.updated_at;
    END IF;

    -- Version 0 is a session created empty: no content, no event.
    IF p_webhooks AND locked.version >= 1 THEN
        PERFORM enqueue_webhook_event(
            p_session_row_id => locked.id, p_user_id => p_user_id, p_session_id => p_session_id,
            p_kind => 'email_session.updated', p_version => locked.version,
            p_subject => next_subject, p_emails => next_emails, p_names => next_names,
            p_session_created_at => locked.created_at, p_session_updated_at => locked.updated_at);
    END IF;
    RETURN ROW(false, false, was_created, NOT was_created OR locked.version = 1, locked.version,
               next_subject, next_emails, next_names, locked.created_at,
               locked.updated_at)::email_session_change_result;
END
$$;
