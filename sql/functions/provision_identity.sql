-- The user of identity (issuer, subject), created on first contact. One call, so one
-- transaction: the user row and its identity appear together or not at all. When a concurrent
-- first request wins the identity's key, ON CONFLICT waits for it to commit and does nothing;
-- the user row made here is removed again and the winner's user is returned (the next
-- statement of a volatile function sees what committed meanwhile).
CREATE OR REPLACE FUNCTION provision_identity(p_issuer TEXT, p_subject TEXT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    found_user BIGINT;
    new_user   BIGINT;
BEGIN
    SELECT user_id INTO found_user FROM identities
     WHERE issuer = p_issuer AND subject = p_subject;
    IF FOUND THEN
        RETURN found_user;
    END IF;
    INSERT INTO users (name) VALUES (NULL) RETURNING id INTO new_user;
    INSERT INTO identities (issuer, subject, user_id) VALUES (p_issuer, p_subject, new_user)
        ON CONFLICT (issuer, subject) DO NOTHING;
    IF FOUND THEN
        RETURN new_user;
    END IF;
    DELETE FROM users WHERE id = new_user;
    SELECT user_id INTO STRICT found_user FROM identities
     WHERE issuer = p_issuer AND subject = p_subject;
    RETURN found_user;
END;
$$;
