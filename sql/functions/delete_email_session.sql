-- Deletes a session of its owner with its recipients (the foreign key cascades) and, with
-- p_webhooks, inserts its email_session.deleted event (carrying the last version) in the same
-- transaction. False when the owner has no session by that ID.
CREATE OR REPLACE FUNCTION delete_email_session(
    p_user_id    bigint,
    p_session_id text,
    p_webhooks   boolean)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    gone email_sessions%ROWTYPE;
BEGIN
    DELETE FROM email_sessions
    WHERE user_id = p_user_id AND session_id = p_session_id
    RETURNING * INTO gone;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_webhooks THEN
        PERFORM enqueue_webhook_event(
            p_session_row_id => gone.id, p_user_id => p_user_id, p_session_id => p_session_id,
            p_kind => 'email_session.deleted', p_version => gone.version,
            p_subject => NULL, p_emails => NULL, p_names => NULL,
            p_session_created_at => gone.created_at, p_session_updated_at => gone.updated_at);
    END IF;
    RETURN true;
END
$$;
