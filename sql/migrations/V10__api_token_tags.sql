-- API tokens carry a tag: an HMAC of the token's ID and secret under tag_key, so any instance
-- can refuse a token it never issued without a lookup (src/auth/api_token.rs). The key
-- authenticates nobody (the stored secret hash does that); whoever can read it can read the
-- hashes and the sessions too, and learns only how to make a made-up token cost one lookup.
-- Tokens issued before tags existed (IDs up to legacy_max_id) carry none and keep working.
-- gen_random_uuid() draws from PostgreSQL's strong random source: two give 244 random bits.
CREATE TABLE api_token_scheme (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    tag_key bytea NOT NULL CHECK (octet_length(tag_key) = 32),
    legacy_max_id bigint NOT NULL
);

INSERT INTO api_token_scheme (tag_key, legacy_max_id)
SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'),
       coalesce((SELECT max(id) FROM api_tokens), 0);
