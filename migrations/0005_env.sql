-- Values flows read: plain ones as `env.NAME`, secret ones only through `secret("NAME")`.
-- Secret values are never sent back by the admin API, never traced and never logged.
CREATE TABLE sluice.env (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    secret     boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT env_name_check CHECK (name ~ '^[A-Z][A-Z0-9_]{0,62}$')
);
