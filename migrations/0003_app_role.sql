-- Role `sluice_app`: what `db.sql` statements run as. The engine switches to it with a
-- transaction-local `SET ROLE` for the one statement and back afterwards. It may read and
-- write the rows of managed tables in schema `app` and nothing else: not Sluice's catalog
-- (schema `sluice`), no DDL, no way back to the session's own role.
--
-- Roles belong to the whole cluster, so several Sluice databases on one cluster share it, and
-- their migrations may race to create it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sluice_app') THEN
        BEGIN
            CREATE ROLE sluice_app NOLOGIN NOINHERIT;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            -- A login without CREATEROLE: Sluice still starts, db.sql stays unavailable until
            -- an administrator creates the role (docs/OPERATIONS.md).
            WHEN insufficient_privilege THEN
                RAISE WARNING 'cannot create role sluice_app: %; db.sql nodes are unavailable until an administrator sets it up (see docs/OPERATIONS.md)', SQLERRM;
        END;
    END IF;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sluice_app') THEN
        RETURN;
    END IF;
    IF current_user = 'sluice_app' THEN
        RAISE WARNING 'Sluice logs in as sluice_app, the role meant to restrict db.sql; db.sql nodes are unavailable until Sluice uses another login';
        RETURN;
    END IF;
    -- Sluice's login must be able to switch to the role. A superuser always can; another
    -- login needs membership, which a login with CREATEROLE may grant itself.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        BEGIN
            EXECUTE format('GRANT sluice_app TO %I', current_user);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'cannot grant role sluice_app to %: %; db.sql nodes fail until an administrator runs: GRANT sluice_app TO %', current_user, SQLERRM, current_user;
        END;
    END IF;
    -- Rows of managed tables, now and later (tables in `app` are created by Sluice's login,
    -- whose default privileges these are). Only row privileges: no TRUNCATE, TRIGGER or
    -- REFERENCES, and without ownership no ALTER or DROP. Identity columns need no sequence
    -- privilege, but a builder's `currval` does.
    GRANT USAGE ON SCHEMA app TO sluice_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO sluice_app;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA app TO sluice_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sluice_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT USAGE, SELECT ON SEQUENCES TO sluice_app;
END
$$;

-- Nothing of Sluice's own schema (flows, users, sessions) for anyone but its owner. The
-- `set_updated_at` trigger still fires on app tables: triggers do not check EXECUTE.
REVOKE ALL ON SCHEMA sluice FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA sluice FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA sluice FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA sluice FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA sluice REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
-- No objects of its own anywhere (Postgres 15 made this the default for new databases).
DO $$
BEGIN
    IF pg_has_role(current_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'public'), 'USAGE') THEN
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    END IF;
END
$$;

-- Built-in functions that reach past the statement's transaction:
--  * set_config can set `role` (or `session_authorization`) back to the session's login from
--    inside the statement, which would undo the role switch;
--  * session-level advisory locks outlive the request on a pooled connection;
--  * large objects outlive it too.
-- Revoking needs a superuser. Without one, the engine refuses to run db.sql (500
-- db.sql_unavailable) while sluice_app can still call set_config. Sluice's own login keeps them.
DO $$
DECLARE
    f text;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE WARNING 'not a superuser, so set_config stays callable by every role; db.sql nodes are unavailable until an administrator revokes it (see docs/OPERATIONS.md)';
        RETURN;
    END IF;
    FOREACH f IN ARRAY ARRAY[
        'pg_catalog.set_config(text, text, boolean)',
        'pg_catalog.pg_advisory_lock(bigint)',
        'pg_catalog.pg_advisory_lock(integer, integer)',
        'pg_catalog.pg_advisory_lock_shared(bigint)',
        'pg_catalog.pg_advisory_lock_shared(integer, integer)',
        'pg_catalog.pg_try_advisory_lock(bigint)',
        'pg_catalog.pg_try_advisory_lock(integer, integer)',
        'pg_catalog.pg_try_advisory_lock_shared(bigint)',
        'pg_catalog.pg_try_advisory_lock_shared(integer, integer)',
        'pg_catalog.lo_create(oid)',
        'pg_catalog.lo_creat(integer)',
        'pg_catalog.lo_from_bytea(oid, bytea)'
    ] LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, current_user);
    END LOOP;
END
$$;
