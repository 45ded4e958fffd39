-- `db.sql` statements run as role `sluice_app` (0003). They may not read password columns:
-- on a managed table with a password field, the role loses its table-wide SELECT and gets
-- SELECT on every other column instead. Postgres then refuses any statement that reads a
-- password column, including `SELECT *`, `RETURNING *`, a whole-row reference such as
-- `to_jsonb(users)` or `row_to_json(u)`, and a `WHERE password = ...` used as an oracle
-- (42501, answered as 500 `db.forbidden`). Writing the column stays allowed (INSERT and
-- UPDATE are still table-wide).
--
-- The privileges follow the stored definition: a trigger on `sluice.tables` applies them
-- whenever a definition is stored (table created, changed, renamed), in the same transaction
-- as the DDL, so a new column or a field that stops being a password is covered at once.

CREATE FUNCTION sluice.sync_app_read_privileges_of(p_name text, p_definition jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    rel regclass;
    cols text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sluice_app') THEN
        RETURN;
    END IF;
    rel := to_regclass(format('app.%I', p_name));
    IF rel IS NULL THEN
        RETURN;
    END IF;
    -- Revoking the table-wide privilege also revokes every column privilege of the role.
    EXECUTE format('REVOKE SELECT ON %s FROM sluice_app', rel);
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
    FROM pg_attribute a
    WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attname NOT IN (
          SELECT f->>'name' FROM jsonb_array_elements(p_definition->'fields') AS f
          WHERE f->>'type' = 'password');
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_definition->'fields') AS f
                   WHERE f->>'type' = 'password') THEN
        EXECUTE format('GRANT SELECT ON %s TO sluice_app', rel);
    ELSIF cols IS NOT NULL THEN
        EXECUTE format('GRANT SELECT (%s) ON %s TO sluice_app', cols, rel);
    END IF;
END
$$;

CREATE FUNCTION sluice.sync_app_read_privileges() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sluice.sync_app_read_privileges_of(NEW.name, NEW.definition);
    RETURN NULL;
END
$$;

CREATE TRIGGER sync_app_read_privileges
    AFTER INSERT OR UPDATE OF name, definition ON sluice.tables
    FOR EACH ROW EXECUTE FUNCTION sluice.sync_app_read_privileges();

-- Tables that exist already.
SELECT sluice.sync_app_read_privileges_of(name, definition) FROM sluice.tables;
