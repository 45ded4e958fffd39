-- The test cases of a flow (format sluice.test, docs/TESTING.md), kept with the flow so they
-- travel with the project: exported as <flow>.tests.json and applied from it. The document's
-- `flow` is the flow's name when it was stored; exports write the current name.
CREATE TABLE sluice.flow_tests (
    flow_id     bigint PRIMARY KEY REFERENCES sluice.flows (id) ON DELETE CASCADE,
    document    jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
