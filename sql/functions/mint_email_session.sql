-- Mints an empty session (version 0) under a fresh ID if the quota allows: 'created', 'taken'
-- (the ID exists; the caller picks another) or 'quota_exceeded'.
CREATE OR REPLACE FUNCTION mint_email_session(p_user_id bigint, p_session_id text, p_quota integer)
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
    INSERT INTO email_sessions (user_id, session_id)
    VALUES (p_user_id, p_session_id)
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
