-- Used when a field's type change fails, to name the rows whose values cannot convert.
-- `t` comes from Sluice's own type names (a regtype), never from a request.
CREATE FUNCTION sluice.can_cast(v text, t regtype) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    EXECUTE format('SELECT %L::%s', v, t);
    RETURN true;
EXCEPTION WHEN others THEN
    RETURN false;
END;
$$;

-- Table definitions are versioned so a change made from an outdated view is refused (409)
-- instead of silently undoing another change.
ALTER TABLE sluice.tables ADD COLUMN version integer NOT NULL DEFAULT 1;
CREATE INDEX table_history_table_id_idx ON sluice.table_history (table_id, applied_at);
