-- Sluice's own catalog. User tables live in schema "app" and are never created here.

CREATE SCHEMA IF NOT EXISTS sluice;
CREATE SCHEMA IF NOT EXISTS app;

-- Keeps updated_at current on every managed table and on catalog tables.
CREATE FUNCTION sluice.set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE sluice.users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    is_admin      boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE sluice.sessions (
    token_hash bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES sluice.users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires_at_idx ON sluice.sessions (expires_at);

CREATE TABLE sluice.tables (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tables_name_key UNIQUE (name)
);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON sluice.tables
    FOR EACH ROW EXECUTE FUNCTION sluice.set_updated_at();

-- Every applied schema change: who, when, the plan and its SQL.
CREATE TABLE sluice.table_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_id   text NOT NULL,
    user_id    bigint REFERENCES sluice.users (id) ON DELETE SET NULL,
    plan       jsonb NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sluice.flows (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text NOT NULL,
    document          jsonb NOT NULL,
    rev               text NOT NULL,
    published_version integer,
    -- "METHOD /path/{}" of the published version; unique so two flows cannot serve one route.
    published_route   text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT flows_name_key UNIQUE (name),
    CONSTRAINT flows_published_route_key UNIQUE (published_route)
);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON sluice.flows
    FOR EACH ROW EXECUTE FUNCTION sluice.set_updated_at();

CREATE TABLE sluice.flow_versions (
    flow_id      bigint NOT NULL REFERENCES sluice.flows (id) ON DELETE CASCADE,
    version      integer NOT NULL,
    document     jsonb NOT NULL,
    rev          text NOT NULL,
    published_by bigint REFERENCES sluice.users (id) ON DELETE SET NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow_id, version)
);
