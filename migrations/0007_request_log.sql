-- The sampled log of generated-API requests, written in batches off the request path and
-- pruned by age and row count (docs/OPERATIONS.md, "Request log").
CREATE TABLE sluice.request_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    flow        text NOT NULL,
    method      text NOT NULL,
    path        text NOT NULL,
    status      smallint NOT NULL,
    duration_ms double precision NOT NULL,
    error_code  text,
    request_id  text NOT NULL
);

CREATE INDEX request_log_at ON sluice.request_log (at);
CREATE INDEX request_log_flow_id ON sluice.request_log (flow, id);
