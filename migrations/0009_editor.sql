-- The editor: login sessions (tower-sessions' Postgres store, its own table layout) and admin
-- API tokens (only a SHA-256 hash of each token is kept).

CREATE TABLE sluice.editor_sessions (
    id          text PRIMARY KEY NOT NULL,
    data        bytea NOT NULL,
    expiry_date timestamptz NOT NULL
);
CREATE INDEX editor_sessions_expiry_date_idx ON sluice.editor_sessions (expiry_date);

CREATE TABLE sluice.api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES sluice.users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    -- The first characters of the token, so a person can tell tokens apart.
    prefix       text NOT NULL,
    token_hash   bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash)
);
