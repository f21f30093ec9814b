-- Records how one claimed delivery attempt ended: 'delivered', 'retry' (due again at
-- p_retry_at), 'dead' (given up after the last delay), or 'released' (not attempted after all: a
-- graceful stop gives its claim back, due at once and not counted as an attempt). Nothing
-- happens, and false is returned, when p_lease_token no longer holds the event: its lease ended
-- and another claim took it, and a late report must not undo what that claim does.
--
-- Delivered or dead, the event stops holding its session back: the session's next undelivered
-- event becomes due in this same transaction (see enqueue_webhook_event for the other side).
CREATE OR REPLACE FUNCTION finish_webhook_attempt(
    p_event_id    bigint,
    p_lease_token bigint,
    p_outcome     text,
    p_retry_at    timestamptz,
    p_error       text)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    finished webhook_events%ROWTYPE;
BEGIN
    UPDATE webhook_events
    SET delivered_at = CASE WHEN p_outcome = 'delivered' THEN now() END,
        dead_at = CASE WHEN p_outcome = 'dead' THEN now() END,
        next_attempt_at = CASE p_outcome WHEN 'retry' THEN p_retry_at
                                         WHEN 'released' THEN now() END,
        attempts = CASE WHEN p_outcome = 'released' THEN attempts - 1 ELSE attempts END,
        lease_token = NULL,
        last_error = CASE WHEN p_outcome = 'released' THEN last_error ELSE p_error END
    WHERE id = p_event_id AND lease_token = p_lease_token
      AND delivered_at IS NULL AND dead_at IS NULL
    RETURNING * INTO finished;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_outcome IN ('delivered', 'dead') THEN
        UPDATE webhook_events
        SET next_attempt_at = now()
        WHERE id = (SELECT id FROM webhook_events
                    WHERE user_id = finished.user_id AND session_id = finished.session_id
                      AND delivered_at IS NULL AND dead_at IS NULL
                    ORDER BY id
                    LIMIT 1)
          AND next_attempt_at IS NULL;
    END IF;
    RETURN true;
END
$$;
