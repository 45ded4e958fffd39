-- The durable job queue (docs/EVENTS.md): background runs of flows with a trigger, on the same
-- Postgres, no broker. The columns follow River's `river_job`, so moving to a maintained queue
-- later is a migration: `kind` is the flow's name, `args` its input. Added here: the lease
-- (`lease_until`, kept alive while the flow runs), the concurrency key, and what the job was
-- made from (`source`: a schedule occurrence, a table change, job.enqueue, the admin API).
--
-- States: available (ready to claim once scheduled_at has passed), scheduled (a future
-- scheduled_at), running, retryable (failed, will be tried again at scheduled_at), completed,
-- discarded (failed for good: the dead-letter list), cancelled (by an admin, or skipped by a
-- schedule's policy; `finalized_at` and the last error say which).

CREATE TABLE sluice.jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state            text NOT NULL DEFAULT 'available'
                     CHECK (state IN ('available', 'scheduled', 'running', 'retryable',
                                      'completed', 'discarded', 'cancelled')),
    kind             text NOT NULL,
    args             jsonb NOT NULL DEFAULT '{}',
    attempt          smallint NOT NULL DEFAULT 0,
    max_attempts     smallint NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    priority         smallint NOT NULL DEFAULT 1 CHECK (priority BETWEEN 1 AND 4),
    queue            text NOT NULL DEFAULT 'default',
    created_at       timestamptz NOT NULL DEFAULT now(),
    scheduled_at     timestamptz NOT NULL DEFAULT now(),
    attempted_at     timestamptz,
    finalized_at     timestamptz,
    attempted_by     text[],
    -- One entry per failed attempt: {attempt, at, code, message, node}.
    errors           jsonb[],
    metadata         jsonb NOT NULL DEFAULT '{}',
    tags             text[] NOT NULL DEFAULT '{}',
    -- A job with a key is unique among the jobs with that key that are not discarded or
    -- cancelled (job.enqueue's `key`; `schedule:<flow>:<occurrence>` for schedules).
    unique_key       text,
    -- Until when the worker that claimed it owns it; after that the rescuer hands it on.
    lease_until      timestamptz,
    concurrency_key  text,
    source           jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT jobs_finalized CHECK (
        (state IN ('completed', 'discarded', 'cancelled')) = (finalized_at IS NOT NULL))
);

-- Claiming: the ready jobs in the claim's own order (priority, due time, id), so a claim reads
-- the first few entries of this index whatever the depth of the queue, instead of sorting
-- every ready job (bench/README.md, "The job queue").
CREATE INDEX jobs_ready ON sluice.jobs (priority, scheduled_at, id)
    WHERE state IN ('available', 'scheduled', 'retryable');
CREATE INDEX jobs_running_lease ON sluice.jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_kind_state ON sluice.jobs (kind, state, id);
CREATE INDEX jobs_concurrency ON sluice.jobs (kind, concurrency_key) WHERE state = 'running';
CREATE INDEX jobs_finalized_at ON sluice.jobs (finalized_at) WHERE finalized_at IS NOT NULL;
CREATE UNIQUE INDEX jobs_unique_key ON sluice.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state NOT IN ('discarded', 'cancelled');

-- Every attempt of a job: who ran it, how it ended, its error and its trace (the debug-run
-- trace format), so a failed job can be opened in the editor with the trace on the canvas.
CREATE TABLE sluice.job_attempts (
    job_id       bigint NOT NULL REFERENCES sluice.jobs (id) ON DELETE CASCADE,
    attempt      smallint NOT NULL,
    worker       text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    -- completed, failed (will retry), discarded, timeout, rescued (the worker's lease ended)
    outcome      text,
    error        jsonb,
    trace        jsonb,
    PRIMARY KEY (job_id, attempt)
);
