-- Deletes a session of its owner (its recipients are in its row) and, with p_webhooks, inserts
-- its email_session.deleted event (carrying the last version) in the same transaction. An
-- If-Match (p_if_match: the versions it names; p_if_match_any: `*`) is judged on the row locked
-- here: a stale one deletes nothing, and so does one on an absent session (RFC 9110: If-Match
-- never holds without a current representation).
--
-- Returns 'deleted', 'not_found' (no If-Match, and no such session) or 'precondition_failed'.
CREATE OR REPLACE FUNCTION delete_email_session(
    p_user_id       bigint,
    p_session_id    text,
    p_if_match      bigint[],
    p_if_match_any  boolean,
    p_webhooks      boolean)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    gone email_sessions%ROWTYPE;
    conditional boolean := p_if_match_any OR p_if_match IS NOT NULL;
BEGIN
    SELECT * INTO gone
    FROM email_sessions
    WHERE user_id = p_user_id AND session_id = p_session_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN CASE WHEN conditional THEN 'precondition_failed' ELSE 'not_found' END;
    END IF;
    IF p_if_match IS NOT NULL AND NOT p_if_match_any AND NOT (gone.version = ANY (p_if_match)) THEN
        RETURN 'precondition_failed';
    END IF;
    DELETE FROM email_sessions WHERE id = gone.id;
    IF p_webhooks THEN
        PERFORM enqueue_webhook_event(
            p_session_row_id => gone.id, p_user_id => p_user_id, p_session_id => p_session_id,
            p_kind => 'email_session.deleted', p_version => gone.version,
            p_subject => NULL, p_emails => NULL, p_names => NULL,
            p_session_created_at => gone.created_at, p_session_updated_at => gone.updated_at);
    END IF;
    RETURN 'deleted';
END
$$;
