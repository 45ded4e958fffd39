-- Captured requests (docs/OPERATIONS.md, "Request log"): for an endpoint with
-- `settings.capture: true`, the request log keeps what the flow saw of the request (path
-- params, query, body and the headers that are not credentials), with secret values replaced
-- by "***" and bodies over 16 KiB left out. NULL for every other endpoint. Pruned with the
-- row it belongs to.
ALTER TABLE sluice.request_log ADD COLUMN request jsonb;
