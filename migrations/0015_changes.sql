-- Table events (docs/EVENTS.md, "Table events"): a table with `"events": true` in its
-- definition gets a row trigger calling `sluice.capture_change()`, which writes one row per
-- changed row into `sluice.changes` in the writing transaction. So every path that writes the
-- table is seen: flows, the admin data API, CSV import, `db.sql`, plain SQL in psql.
--
-- `xid` is the writing transaction's id. A row is final (committed, and never to be joined by
-- another row of the same transaction) once its xid is below the xmin of a current snapshot;
-- the dispatcher reads only such rows, in (xid, id) order, and keeps its place in
-- `sluice.change_cursor`, so a transaction that commits late is never skipped.

CREATE TABLE sluice.changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    table_name  text NOT NULL,
    op          text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    old         jsonb,
    new         jsonb,
    -- Updates: the columns whose value changed (password columns by name only).
    changed     text[] NOT NULL DEFAULT '{}',
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX changes_order ON sluice.changes (xid, id);
CREATE INDEX changes_at ON sluice.changes (at);

-- The dispatcher's place: every change with (xid, id) <= (last_xid, last_id) has been turned
-- into jobs. One row; the dispatcher locks it, so one instance dispatches at a time.
CREATE TABLE sluice.change_cursor (
    id          smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    last_xid    xid8 NOT NULL DEFAULT '0',
    last_id     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO sluice.change_cursor (id) VALUES (1);

-- The trigger's arguments are the table's password columns, planned by the DDL planner from
-- the table definition: they are never copied into the log. SECURITY DEFINER with a fixed
-- search path and time zone, so a write as `sluice_app` (db.sql), which cannot reach schema
-- sluice, is still logged, and timestamps in the log are always in UTC.
CREATE FUNCTION sluice.capture_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    hidden text[] := coalesce(TG_ARGV, '{}');
    o jsonb;
    n jsonb;
    diff text[] := '{}';
BEGIN
    IF TG_OP <> 'INSERT' THEN
        o := to_jsonb(OLD);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        n := to_jsonb(NEW);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT coalesce(array_agg(k ORDER BY k), '{}') INTO diff
        FROM jsonb_object_keys(n) AS k
        WHERE n -> k IS DISTINCT FROM o -> k;
    END IF;
    INSERT INTO sluice.changes (table_name, op, old, new, changed)
    VALUES (TG_TABLE_NAME, lower(TG_OP), o - hidden, n - hidden, diff);
    PERFORM pg_notify('sluice_changes', '');
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION sluice.capture_change() FROM PUBLIC;
