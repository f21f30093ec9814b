-- V1 made users.token_hash UNIQUE "so a token maps to one user". That is no
-- longer how it works: a token is `<user id>.<secret>`, the ID finds the row,
-- and the SHA-256 of the secret is compared with token_hash in constant time.
-- (V1 itself stays as it was applied.)
-- The unique index bought nothing but a write per new user, so it goes, and
-- the column says what it is for.
ALTER TABLE users DROP CONSTRAINT users_token_hash_key;
COMMENT ON COLUMN users.token_hash IS
    'SHA-256 of the token''s secret; the token (<id>.<secret>) finds its row by id, never by this hash';
