-- Takes one place of the user's quota of new sessions for today (UTC); false when none is left.
-- The count lives in user_daily_new_sessions and is taken in the creating transaction, under the
-- lock of the user's row for the day, so several requests taking "the last place" at once, on any
-- number of instances, line up and only one gets it. p_quota <= 0 (or NULL) means unlimited.
CREATE OR REPLACE FUNCTION take_new_session_quota(p_user_id bigint, p_quota integer)
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
