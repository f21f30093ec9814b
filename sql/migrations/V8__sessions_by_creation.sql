-- The list of a user's sessions (GET /api/email/sessions) walks them newest first by creation, a
-- page at a time after a cursor (the previous page's last sort key). This index serves both the
-- order and the cursor's row comparison, so a page reads about `limit` entries of it whatever the
-- user's total.
CREATE INDEX email_sessions_by_creation
    ON email_sessions (user_id, created_at DESC, session_id DESC);
