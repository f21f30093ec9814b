-- Sessions can now be deleted (DELETE /api/email/sessions/{id}), so a row may
-- vanish between a first touch's insert, which found it, and the lock that
-- follows. V6 answered that case as a failed precondition; now an
-- unconditional write creates the session again (a later PUT after a delete
-- starts afresh at version 1), and only a write that needs the row (If-Match)
-- fails. Otherwise the same function as V6.
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
    p_if_none_match_any   boolean)
RETURNS TABLE (
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
        -- First touch (never under If-Match): the row is born with the change applied to
        -- empty content.
        IF NOT needs_row THEN
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
        END IF;
        SELECT * INTO locked
        FROM email_sessions
        WHERE user_id = p_user_id AND session_id = p_session_id
        FOR UPDATE;
        EXIT WHEN FOUND;
        IF needs_row THEN
            RETURN QUERY SELECT true, false, false, NULL::bigint, NULL::text, NULL::text[],
                                NULL::text[], NULL::timestamptz, NULL::timestamptz;
            RETURN;
        END IF;
    END LOOP;

    IF NOT was_created THEN
        IF (p_if_match IS NOT NULL AND NOT p_if_match_any AND NOT (locked.version = ANY (p_if_match)))
           OR p_if_none_match_any
           OR (p_if_none_match IS NOT NULL AND locked.version = ANY (p_if_none_match)) THEN
            RETURN QUERY SELECT true, false, false, locked.version, NULL::text, NULL::text[],
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
            RETURN QUERY SELECT false, false, false, locked.version, locked.subject,
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
    RETURN QUERY SELECT false, was_created, was_created = false OR locked.version = 1, locked.version,
                        next_subject, next_emails, next_names, locked.created_at, locked.updated_at;
END
$$;
