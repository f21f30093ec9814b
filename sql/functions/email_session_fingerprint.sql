-- The content digest of a session: subject and the ordered (email, display name) pairs. A writer
-- compares it with the stored one to tell "nothing changed" without reloading the recipient rows.
-- jsonb text is canonical, so equal contents always digest alike.
-- PL/pgSQL rather than SQL: called from PL/pgSQL, a SQL function was parsed and planned on every
-- call, 8 % of the database's time. STABLE, not IMMUTABLE: convert_to and jsonb_build_array are
-- STABLE, and IMMUTABLE would promise more than the functions it calls do.
CREATE OR REPLACE FUNCTION email_session_fingerprint(subject text, emails text[], names text[])
RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN sha256(convert_to(
        jsonb_build_array(subject, coalesce(emails, '{}'), coalesce(names, '{}'))::text,
        'UTF8'));
END
$$;
