//! Table definitions in the catalog (`sluice.tables`, versioned) and the application of DDL
//! plans: one transaction per change, serialized by an advisory lock, each step in a savepoint
//! so a step that fails because of existing rows can be explained with the rows it names.
//! Knows sqlx, not axum.

use super::ddl::{DdlStep, Plan};
use super::def::{DefProblem, TableDef, Tables};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgPool, Postgres, Row, Transaction};

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
    #[error("the table changed since version {expected}; its current version is {current}")]
    Stale { expected: i32, current: i32 },
    #[error("send the table version you edited in an If-Match header")]
    VersionRequired,
    #[error("dropping {0} deletes data; list it in `confirm_drop` to confirm")]
    NeedsConfirmation(String),
    #[error("{hint}")]
    StepFailed {
        step: String,
        hint: String,
        rows: Vec<Value>,
        cause: String,
    },
    #[error("table `{table}` is referenced by {by}")]
    Referenced { table: String, by: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A definition with its version.
#[derive(Debug, Clone, Serialize)]
pub struct StoredTable {
    #[serde(flatten)]
    pub def: TableDef,
    pub version: i32,
}

/// Takes the schema-change lock for the rest of the transaction.
pub async fn lock(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn parse(row: &sqlx::postgres::PgRow) -> Result<Option<StoredTable>, sqlx::Error> {
    let v: sqlx::types::Json<Value> = row.try_get("definition")?;
    let version: i32 = row.try_get("version")?;
    match serde_json::from_value::<TableDef>(v.0) {
        Ok(def) => Ok(Some(StoredTable { def, version })),
        Err(e) => {
            tracing::error!(error = %e, "a stored table definition does not parse; skipping it");
            Ok(None)
        }
    }
}

/// Every table definition by name.
pub async fn all(pool: &PgPool) -> Result<Tables, TableError> {
    Ok(all_stored(pool)
        .await?
        .into_iter()
        .map(|t| (t.def.name.to_string(), t.def))
        .collect())
}

pub async fn all_stored(pool: &PgPool) -> Result<Vec<StoredTable>, TableError> {
    let rows = sqlx::query("SELECT definition, version FROM sluice.tables ORDER BY name")
        .fetch_all(pool)
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        out.extend(parse(r)?);
    }
    Ok(out)
}

/// All definitions as seen inside a change's transaction.
pub async fn all_in(tx: &mut Transaction<'_, Postgres>) -> Result<Tables, TableError> {
    let rows = sqlx::query("SELECT definition, version FROM sluice.tables")
        .fetch_all(&mut **tx)
        .await?;
    let mut out = Tables::new();
    for r in &rows {
        if let Some(t) = parse(r)? {
            out.insert(t.def.name.to_string(), t.def);
        }
    }
    Ok(out)
}

pub async fn get(pool: &PgPool, name: &str) -> Result<StoredTable, TableError> {
    let row = sqlx::query("SELECT definition, version FROM sluice.tables WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| TableError::NotFound(name.to_string()))?;
    parse(&row)?.ok_or_else(|| TableError::NotFound(name.to_string()))
}

/// The current definition, locked for the change.
pub async fn get_for_update(
    tx: &mut Transaction<'_, Postgres>,
    name: &str,
) -> Result<StoredTable, TableError> {
    let row =
        sqlx::query("SELECT definition, version FROM sluice.tables WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| TableError::NotFound(name.to_string()))?;
    parse(&row)?.ok_or_else(|| TableError::NotFound(name.to_string()))
}

/// The name of the constraint a database error violated, if any.
pub fn violated_constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

/// Runs every step of a plan. A failing step is rolled back to its savepoint and, when it has
/// an offenders query, explained with the rows that stand in the way; the caller's transaction
/// is then rolled back, so nothing changes.
pub async fn apply(tx: &mut Transaction<'_, Postgres>, plan: &Plan) -> Result<(), TableError> {
    for step in &plan.steps {
        sqlx::query("SAVEPOINT sluice_step")
            .execute(&mut **tx)
            .await?;
        match sqlx::query(step.sql.as_str())
            .persistent(false)
            .execute(&mut **tx)
            .await
        {
            Ok(_) => {}
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT sluice_step")
                    .execute(&mut **tx)
                    .await?;
                return Err(explain(tx, step, e).await);
            }
        }
    }
    Ok(())
}

async fn explain(tx: &mut Transaction<'_, Postgres>, step: &DdlStep, e: sqlx::Error) -> TableError {
    let client_side = matches!(&e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23") || c == "42804" || c == "42846"));
    let (Some(offenders), true) = (&step.offenders, client_side) else {
        return TableError::Db(e);
    };
    let rows: Vec<Value> = match sqlx::query_scalar::<_, sqlx::types::Json<Value>>(&format!(
        "SELECT to_jsonb(o.\"id\") FROM ({offenders}) o"
    ))
    .persistent(false)
    .fetch_all(&mut **tx)
    .await
    {
        Ok(rows) => rows.into_iter().map(|j| j.0).collect(),
        Err(_) => Vec::new(),
    };
    let cause = match &e {
        sqlx::Error::Database(db) => db.message().to_string(),
        _ => String::new(),
    };
    TableError::StepFailed {
        step: step.summary.clone(),
        hint: step.hint.clone().unwrap_or_default(),
        rows,
        cause,
    }
}

pub async fn insert_def(
    tx: &mut Transaction<'_, Postgres>,
    def: &TableDef,
) -> Result<(), TableError> {
    sqlx::query("INSERT INTO sluice.tables (id, name, definition) VALUES ($1, $2, $3)")
        .bind(&def.id)
        .bind(def.name.as_str())
        .bind(sqlx::types::Json(def))
        .execute(&mut **tx)
        .await
        .map_err(|e| match violated_constraint(&e) {
            Some("tables_name_key") => TableError::Exists(def.name.to_string()),
            _ => TableError::Db(e),
        })?;
    Ok(())
}

/// Stores a changed definition; returns the new version.
pub async fn update_def(
    tx: &mut Transaction<'_, Postgres>,
    def: &TableDef,
) -> Result<i32, TableError> {
    sqlx::query_scalar("UPDATE sluice.tables SET name = $2, definition = $3, version = version + 1 WHERE id = $1 RETURNING version")
        .bind(&def.id)
        .bind(def.name.as_str())
        .bind(sqlx::types::Json(def))
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| match violated_constraint(&e) {
            Some("tables_name_key") => TableError::Exists(def.name.to_string()),
            _ => TableError::Db(e),
        })
}

pub async fn delete_def(tx: &mut Transaction<'_, Postgres>, id: &str) -> Result<(), TableError> {
    sqlx::query("DELETE FROM sluice.tables WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records an applied plan: who, when, the changes and their SQL.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    table_id: &str,
    user_id: i64,
    plan: &Plan,
) -> Result<(), TableError> {
    sqlx::query("INSERT INTO sluice.table_history (table_id, user_id, plan) VALUES ($1, $2, $3)")
        .bind(table_id)
        .bind(user_id)
        .bind(sqlx::types::Json(plan))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One applied change of a table.
#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    pub applied_at: String,
    pub user: Option<String>,
    pub plan: Value,
}

pub async fn history(pool: &PgPool, table_id: &str) -> Result<Vec<HistoryEntry>, TableError> {
    let rows = sqlx::query(
        "SELECT to_jsonb(h.applied_at) #>> '{}' AS applied_at, u.email, h.plan FROM sluice.table_history h \
         LEFT JOIN sluice.users u ON u.id = h.user_id WHERE h.table_id = $1 ORDER BY h.id DESC LIMIT 200",
    )
    .bind(table_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryEntry {
                applied_at: r.try_get("applied_at")?,
                user: r.try_get("email")?,
                plan: r.try_get::<sqlx::types::Json<Value>, _>("plan")?.0,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(TableError::Db)
}

/// A short random id (`t_…`, `f_…`, `i_…`), stable across renames.
pub fn new_id(prefix: &str) -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut b = [0u8; 6];
    OsRng.fill_bytes(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}_{hex}")
}

/// Creates a table.
pub async fn create(
    pool: &PgPool,
    def: TableDef,
    user_id: i64,
) -> Result<(StoredTable, Plan), TableError> {
    let mut tx = pool.begin().await?;
    let created = create_in(&mut tx, def, user_id).await?;
    tx.commit().await?;
    Ok(created)
}

/// Creates a table inside the caller's transaction, which then holds the schema-change lock
/// until it ends (CSV import into a new table creates the table and fills it in one
/// transaction, so a failed import leaves no table behind).
pub async fn create_in(
    tx: &mut Transaction<'_, Postgres>,
    mut def: TableDef,
    user_id: i64,
) -> Result<(StoredTable, Plan), TableError> {
    lock(tx).await?;
    let tables = all_in(tx).await?;
    let mut problems = def.assign_ids(None, new_id);
    problems.extend(def.check(&tables));
    problems.extend(super::rules::check(&def, &tables));
    if !problems.is_empty() {
        return Err(TableError::Invalid(problems));
    }
    if tables.contains_key(def.name.as_str()) {
        return Err(TableError::Exists(def.name.to_string()));
    }
    let plan = super::ddl::plan_create(&def, &tables);
    apply(tx, &plan).await?;
    insert_def(tx, &def).await?;
    record(tx, &def.id, user_id, &plan).await?;
    Ok((StoredTable { def, version: 1 }, plan))
}
