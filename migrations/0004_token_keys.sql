-- Keys that sign end-user API tokens (HS256). Exactly one key is current (retired_at IS NULL);
-- Sluice creates the first one at startup. Rotation (issue 5) retires the current key and
-- inserts a new one in one transaction; retired keys stay to verify tokens issued before.
CREATE TABLE sluice.token_keys (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    secret     bytea NOT NULL CHECK (octet_length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz
);
-- At most one current key, so instances starting together cannot each create one.
CREATE UNIQUE INDEX token_keys_current_key ON sluice.token_keys ((true)) WHERE retired_at IS NULL;
