-- Schedule triggers (docs/EVENTS.md, "Schedules"): one row per published flow with a schedule
-- trigger, kept in step with what is published by the scheduler of every instance. An
-- occurrence fires once across all instances: the instance that moves `next_fire_at` from the
-- value it read (a conditional update) enqueues the occurrence's job in the same transaction,
-- and the job's unique key (`schedule:<flow>:<occurrence>`) refuses a second one anyway.

CREATE TABLE sluice.schedules (
    -- The flow's name (the jobs' `kind`).
    flow          text PRIMARY KEY,
    cron          text NOT NULL,
    timezone      text NOT NULL,
    -- The trigger as published (cron, timezone and policies). A republish that leaves cron and
    -- timezone alone keeps `next_fire_at`, so no occurrence is skipped or doubled.
    trigger       jsonb NOT NULL,
    -- The next occurrence to fire; NULL when the expression never matches again.
    next_fire_at  timestamptz,
    -- The last occurrence enqueued, and its job.
    last_fire_at  timestamptz,
    last_job_id   bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX schedules_next_fire_at ON sluice.schedules (next_fire_at);

-- Occurrences that did not run, so none is dropped without a trace: consecutive occurrences
-- skipped for one reason are one row (`first_occurrence` to `last_occurrence`, `occurrences`
-- of them). Reasons: missed (no instance ran at their time and `catch_up` did not run them),
-- too_late (found later than `max_lateness_ms`), overlap (a run was not finished).
CREATE TABLE sluice.schedule_skips (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow              text NOT NULL,
    first_occurrence  timestamptz NOT NULL,
    last_occurrence   timestamptz NOT NULL,
    occurrences       bigint NOT NULL DEFAULT 1 CHECK (occurrences > 0),
    reason            text NOT NULL CHECK (reason IN ('missed', 'too_late', 'overlap')),
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (last_occurrence >= first_occurrence)
);

CREATE INDEX schedule_skips_flow ON sluice.schedule_skips (flow, id DESC);
