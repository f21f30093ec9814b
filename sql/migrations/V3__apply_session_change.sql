-- The write became one SQL function call (apply_email_session_change, now in
-- sql/functions/, re-created on every start), which computes the content digest
-- itself (email_session_fingerprint, sql/functions/ too) instead of taking the
-- service's. Rows written before this migration carry a digest computed by the
-- service; recompute them so an unchanged session still compares equal. The
-- expression is the digest function's own, written out: migrations run before
-- the functions are created, and this one must mean what it meant when it ran.
UPDATE email_sessions s
SET content_fingerprint = sha256(convert_to(
    jsonb_build_array(
        s.subject,
        (SELECT coalesce(array_agg(r.email ORDER BY r.position), '{}')
         FROM email_session_recipients r WHERE r.session_row_id = s.id),
        (SELECT coalesce(array_agg(r.display_name ORDER BY r.position), '{}')
         FROM email_session_recipients r WHERE r.session_row_id = s.id))::text,
    'UTF8'));
