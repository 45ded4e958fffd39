//! Sluice's own tables in schema `sluice`: migrations, flows and their published versions,
//! editor accounts and sessions, token signing keys. Store functions that are part of a larger change take a
//! transaction so the caller owns the commit. Knows sqlx, not axum.

pub mod editor;
pub mod env;
pub mod flow_tests;
pub mod flow_versions;
pub mod flows;
pub mod groups;
pub mod request_log;
pub mod token_keys;
pub mod user_sessions;
pub mod users;

use sqlx::PgPool;

/// Embedded migrations from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The schema of Sluice's own tables, including sqlx's migration bookkeeping.
pub const SCHEMA: &str = "sluice";

/// Brings the catalog to the current version. Safe to run from several instances at once:
/// sqlx takes an advisory lock. The schema must exist first because the migration table
/// lives in it (`pool` is one session whose `search_path` is `sluice`: `startup::migrate`).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::query("CREATE SCHEMA IF NOT EXISTS sluice")
        .execute(pool)
        .await?;
    MIGRATOR.run(pool).await
}

/// Errors of catalog stores.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("not found")]
    NotFound,
    #[error("a flow named `{0}` already exists")]
    NameTaken(String),
    #[error("another published flow already serves {0}")]
    RouteTaken(String),
    #[error("no API group named `{0}`; create it before publishing into it")]
    UnknownGroup(String),
    #[error(
        "published flows call the function `{name}` by name: {}; unpublish or change them first",
        .by.join(", ")
    )]
    FunctionInUse { name: String, by: Vec<String> },
    #[error("the flow changed since rev {expected}; its current rev is {current}")]
    Stale { expected: String, current: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub use crate::tables::store::violated_constraint;
