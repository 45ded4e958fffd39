-- End-user sessions (docs/SESSIONS.md): what `auth.issue_token` with `session: true` opens,
-- `auth.refresh` continues and `auth.logout` or an admin ends. One row per session; its
-- refresh tokens (one family) are in `user_refresh_tokens`, stored as a public selector and
-- the SHA-256 of a secret verifier, never as the token itself.
CREATE TABLE sluice.user_sessions (
    -- 32 hex characters (16 random bytes), the access tokens' `sid` claim.
    id                text PRIMARY KEY,
    -- The token's `sub`: the user's id as text.
    subject           text NOT NULL,
    -- The `role` claim of the last access token issued (at issue, then at each refresh).
    role              text,
    audience          text NOT NULL,
    -- Claims given at issue other than `role`, copied into every access token of the session.
    claims            jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_used_at      timestamptz NOT NULL DEFAULT now(),
    -- Absolute end: no refresh token of the session outlives it.
    expires_at        timestamptz NOT NULL,
    -- When the last access token issued for the session expires; a revoked session stays
    -- in the revoked set until then (docs/SESSIONS.md).
    access_expires_at timestamptz NOT NULL,
    revoked_at        timestamptz,
    -- logout, logout_everywhere, admin, reuse, user_gone, capped
    revoked_reason    text
);
CREATE INDEX user_sessions_subject ON sluice.user_sessions (subject, created_at);
CREATE INDEX user_sessions_revoked ON sluice.user_sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX user_sessions_expires ON sluice.user_sessions (expires_at);

CREATE TABLE sluice.user_refresh_tokens (
    -- The token's public half, to find the row.
    selector      bytea PRIMARY KEY,
    -- SHA-256 of the token's secret half, compared in constant time.
    verifier_hash bytea NOT NULL,
    session_id    text NOT NULL REFERENCES sluice.user_sessions (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Set when the token was exchanged; presenting it again is reuse.
    used_at       timestamptz
);
CREATE INDEX user_refresh_tokens_session ON sluice.user_refresh_tokens (session_id, created_at);

-- The algorithm of a token signing key (docs/OPERATIONS.md, "API tokens and key rotation"):
-- HS256 (the secret is 32 random bytes) or EdDSA (the secret is an Ed25519 key pair as a
-- PKCS#8 document). Chosen per key when it is made; tokens say it in their header.
ALTER TABLE sluice.token_keys
    ADD COLUMN alg text NOT NULL DEFAULT 'HS256' CHECK (alg IN ('HS256', 'EdDSA'));
