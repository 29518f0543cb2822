-- The login's `claims` request parameter (OIDC Core §5.5) with each access token issued from
-- it, so /userinfo and /premiuminfo read the token alone. Tokens issued before take it from
-- their session (retention keeps a session while a token refers to it).
ALTER TABLE access_tokens ADD COLUMN claims TEXT;
UPDATE access_tokens SET claims = (SELECT claims FROM sessions WHERE sessions.id = access_tokens.session_id)
    WHERE session_id IS NOT NULL;
