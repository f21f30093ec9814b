-- Gives a place of today's quota back: the session it was taken for was created by someone else
-- meanwhile, so this transaction created nothing.
CREATE OR REPLACE FUNCTION give_back_new_session_quota(p_user_id bigint, p_quota integer)
RETURNS void
LANGUAGE sql
AS $$
    UPDATE user_daily_new_sessions
    SET created = created - 1
    WHERE p_quota > 0 AND user_id = p_user_id AND day = (now() AT TIME ZONE 'UTC')::date
      AND created > 0
$$;
