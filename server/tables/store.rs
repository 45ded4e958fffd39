//! Applies table plans and keeps table definitions in the catalog (`sluice.tables`), one
//! transaction per change, serialized by an advisory lock so concurrent changes cannot
//! interleave. Knows sqlx, not axum.

use super::ddl::{DdlStep, plan_create};
use super::def::{DefProblem, TableDef};
use serde_json::Value;
use sqlx::{PgPool, Row};
use std::collections::BTreeMap;

/// Key of the advisory lock that serializes schema changes across instances.
const SCHEMA_LOCK: i64 = 0x0051_1ce7_ab1e;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("the table definition is invalid")]
    Invalid(Vec<DefProblem>),
    #[error("a table named `{0}` already exists")]
    Exists(String),
    #[error("there is no table `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Creates a table: checks the definition, assigns stable ids, runs the DDL plan and records
/// the definition and the plan, all in one transaction.
pub async fn create(
    pool: &PgPool,
    mut def: TableDef,
    user_id: i64,
) -> Result<(TableDef, Vec<DdlStep>), TableError> {
    let problems = def.check();
    if !problems.is_empty() {
        return Err(TableError::Invalid(problems));
    }
    def.id = new_id("t");
    for f in &mut def.fields {
        f.id = new_id("f");
    }
    let steps = plan_create(&def);
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *tx)
        .await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sluice.tables WHERE name = $1)")
            .bind(def.name.as_str())
            .fetch_one(&mut *tx)
            .await?;
    if exists {
        return Err(TableError::Exists(def.name.to_string()));
    }
    for step in &steps {
        sqlx::query(step.sql.as_str())
            .persistent(false)
            .execute(&mut *tx)
            .await?;
    }
    let definition = serde_json::to_value(&def).unwrap_or(Value::Null);
    sqlx::query("INSERT INTO sluice.tables (id, name, definition) VALUES ($1, $2, $3)")
        .bind(&def.id)
        .bind(def.name.as_str())
        .bind(sqlx::types::Json(&definition))
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO sluice.table_history (table_id, user_id, plan) VALUES ($1, $2, $3)")
        .bind(&def.id)
        .bind(user_id)
        .bind(sqlx::types::Json(&steps_json(&steps)))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((def, steps))
}

fn steps_json(steps: &[DdlStep]) -> Value {
    serde_json::to_value(steps).unwrap_or(Value::Null)
}

/// Every table definition by name.
pub async fn all(pool: &PgPool) -> Result<BTreeMap<String, TableDef>, TableError> {
    let rows = sqlx::query("SELECT definition FROM sluice.tables ORDER BY name")
        .fetch_all(pool)
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let v: sqlx::types::Json<Value> = r.try_get("definition")?;
        match serde_json::from_value::<TableDef>(v.0) {
            Ok(def) => {
                out.insert(def.name.to_string(), def);
            }
            Err(e) => {
                tracing::error!(error = %e, "a stored table definition does not parse; skipping it")
            }
        }
    }
    Ok(out)
}

pub async fn get(pool: &PgPool, name: &str) -> Result<TableDef, TableError> {
    all(pool)
        .await?
        .remove(name)
        .ok_or_else(|| TableError::NotFound(name.to_string()))
}

/// A short random id, stable across renames.
fn new_id(prefix: &str) -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut b = [0u8; 6];
    OsRng.fill_bytes(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}_{hex}")
}
