-- The unique recipient index folded case with the database's collation,
-- while the service de-duplicates with ASCII folding. Under a UTF-8 locale
-- the two disagree on letters such as 'İ' and final sigma, so a list the
-- service considered duplicate-free could hit the index and fail. Both now
-- fold ASCII letters only: lower() under the "C" collation does exactly that.
DROP INDEX email_session_recipients_address_key;
CREATE UNIQUE INDEX email_session_recipients_address_key
    ON email_session_recipients (session_row_id, lower(email COLLATE "C"));

