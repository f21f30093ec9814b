-- Inserts the webhook event of a change the calling transaction applies, behind the session's
-- undelivered events. At most one per (session row, kind, version): a second call for the same
-- version, from any instance, does nothing.
--
-- Only a session's oldest undelivered event is due; a new one behind others waits (next_attempt_at
-- NULL) until finish_webhook_attempt makes it due. The newest undelivered event is locked first,
-- so that a concurrent finish either waits for this transaction and then sees the new event, or
-- has finished before the lock and is no longer undelivered, and the new event is due at once:
-- either way no event is left waiting behind nothing.
CREATE OR REPLACE FUNCTION enqueue_webhook_event(
    p_session_row_id     bigint,
    p_user_id            bigint,
    p_session_id         text,
    p_kind               text,
    p_version            bigint,
    p_subject            text,
    p_emails             text[],
    p_names              text[],
    p_session_created_at timestamptz,
    p_session_updated_at timestamptz)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    behind_others boolean;
BEGIN
    PERFORM 1 FROM webhook_events
    WHERE user_id = p_user_id AND session_id = p_session_id
      AND delivered_at IS NULL AND dead_at IS NULL
    ORDER BY id DESC
    LIMIT 1
    FOR UPDATE;
    behind_others := FOUND;
    INSERT INTO webhook_events (session_row_id, user_id, session_id, kind, version, subject,
                                emails, names, session_created_at, session_updated_at,
                                next_attempt_at)
    VALUES (p_session_row_id, p_user_id, p_session_id, p_kind, p_version, p_subject,
            p_emails, p_names, p_session_created_at, p_session_updated_at,
            CASE WHEN behind_others THEN NULL ELSE now() END)
    ON CONFLICT ON CONSTRAINT webhook_events_one_per_version DO NOTHING;
END
$$;
