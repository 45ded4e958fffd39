//! What the scheduler asks of the queue besides enqueueing (docs/EVENTS.md, "Schedules"): is a
//! run of a flow still unfinished (`overlap: skip`), and the states of the schedules' last jobs
//! (the admin API). Reads only.

use sqlx::PgConnection;

/// Whether flow `kind` has a job not finished yet (available, scheduled, running or retryable).
pub async fn unfinished(conn: &mut PgConnection, kind: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sluice.jobs WHERE kind = $1 \
         AND state IN ('available', 'scheduled', 'running', 'retryable'))",
    )
    .bind(kind)
    .fetch_one(conn)
    .await
}

/// The state of each of these jobs that still exists, by id.
pub async fn states(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, state FROM sluice.jobs WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await
}
