//! The stored test cases of each flow (`sluice.flow_tests`, docs/TESTING.md): one tests
//! document per flow, deleted with the flow. Checked by the layers above (`project::flow_tests`);
//! stored here as they were given.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// The tests document of flow `id`, if it has one.
pub async fn get(pool: &PgPool, id: i64) -> Result<Option<Value>, sqlx::Error> {
    let doc: Option<sqlx::types::Json<Value>> =
        sqlx::query_scalar("SELECT document FROM sluice.flow_tests WHERE flow_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(doc.map(|d| d.0))
}

/// Stores (or replaces) the tests document of flow `id`.
pub async fn put(conn: &mut PgConnection, id: i64, doc: &Value) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sluice.flow_tests (flow_id, document) VALUES ($1, $2) \
         ON CONFLICT (flow_id) DO UPDATE SET document = excluded.document, updated_at = now()",
    )
    .bind(id)
    .bind(sqlx::types::Json(doc))
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the tests of flow `id`; returns whether it had any.
pub async fn delete(conn: &mut PgConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sluice.flow_tests WHERE flow_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Every flow's tests: `(flow id, flow name, document)`, by flow name.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<(i64, String, Value)>, sqlx::Error> {
    let rows: Vec<(i64, String, sqlx::types::Json<Value>)> = sqlx::query_as(
        "SELECT f.id, f.name, t.document FROM sluice.flow_tests t \
         JOIN sluice.flows f ON f.id = t.flow_id ORDER BY f.name",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id, n, d)| (id, n, d.0)).collect())
}
