-- API groups: a base path under /api, an on/off switch, CORS rules and rate limits shared by
-- the endpoints that name the group in `endpoint.group`. The group `default` (empty base path)
-- serves endpoints that name no group; it cannot be deleted.
CREATE TABLE sluice.api_groups (
    name        text PRIMARY KEY,
    base_path   text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    cors        jsonb,
    rate_limit  jsonb,
    description text NOT NULL DEFAULT '',
    -- Bumped on every change, so a save made from an outdated view is refused (409).
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_groups_name_check CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    CONSTRAINT api_groups_base_path_check CHECK (base_path ~ '^(/[a-z0-9][a-z0-9._-]*)*$'),
    CONSTRAINT api_groups_base_path_key UNIQUE (base_path)
);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON sluice.api_groups
    FOR EACH ROW EXECUTE FUNCTION sluice.set_updated_at();
INSERT INTO sluice.api_groups (name, base_path, description)
    VALUES ('default', '', 'Endpoints that name no group.');

-- What every instance serves is derived from the catalog. Each change to it moves this
-- generation and notifies channel `sluice_reload` (delivered on commit), so other instances
-- reload; a periodic comparison of the generation heals a missed notification.
CREATE TABLE sluice.serving (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    generation bigint NOT NULL
);
INSERT INTO sluice.serving (generation) VALUES (1);

CREATE FUNCTION sluice.serving_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    g bigint;
BEGIN
    UPDATE sluice.serving SET generation = generation + 1 RETURNING generation INTO g;
    PERFORM pg_notify('sluice_reload', g::text);
    RETURN NULL;
END;
$$;

-- Drafts change often and serve nothing: only publishing, unpublishing and deleting a
-- published flow count.
CREATE TRIGGER serving_changed AFTER UPDATE ON sluice.flows
    FOR EACH ROW WHEN (OLD.published_version IS DISTINCT FROM NEW.published_version
                       OR OLD.published_route IS DISTINCT FROM NEW.published_route)
    EXECUTE FUNCTION sluice.serving_changed();
CREATE TRIGGER serving_changed_delete AFTER DELETE ON sluice.flows
    FOR EACH ROW WHEN (OLD.published_version IS NOT NULL)
    EXECUTE FUNCTION sluice.serving_changed();
CREATE TRIGGER serving_changed AFTER INSERT OR UPDATE OR DELETE ON sluice.tables
    FOR EACH STATEMENT EXECUTE FUNCTION sluice.serving_changed();
CREATE TRIGGER serving_changed AFTER INSERT OR UPDATE OR DELETE ON sluice.api_groups
    FOR EACH STATEMENT EXECUTE FUNCTION sluice.serving_changed();
CREATE TRIGGER serving_changed AFTER INSERT OR UPDATE OR DELETE ON sluice.env
    FOR EACH STATEMENT EXECUTE FUNCTION sluice.serving_changed();
CREATE TRIGGER serving_changed AFTER INSERT OR UPDATE OR DELETE ON sluice.token_keys
    FOR EACH STATEMENT EXECUTE FUNCTION sluice.serving_changed();
