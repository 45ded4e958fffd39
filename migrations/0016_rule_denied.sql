-- Raised inside a write whose new row an access rule's check refuses (docs/RULES.md): the
-- statement that wrote the row fails, so nothing is written. The argument only gives the
-- function its return type (that of the row the write returns); it is never read.
CREATE FUNCTION sluice.rule_denied(r anyelement) RETURNS anyelement
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'an access rule refused the row' USING ERRCODE = 'SLR01';
END
$$;
