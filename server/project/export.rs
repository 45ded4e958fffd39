//! The files of a project's current state (`GET /_/api/v1/project`, `sluice export`): every
//! table definition, API group, flow draft, flow tests, environment value and secret name,
//! rendered by
//! [`super::files::render`].

use super::files::{self, EnvFile};
use super::flow_tests::TestsFile;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::BTreeMap;

/// The project's files, by path.
pub async fn files(pool: &PgPool) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let tables: Vec<_> = crate::tables::store::all(pool)
        .await
        .map_err(|e| match e {
            crate::tables::store::TableError::Db(e) => e,
            other => sqlx::Error::Protocol(other.to_string()),
        })?
        .into_values()
        .collect();
    let groups: Vec<_> = crate::catalog::groups::all(pool)
        .await?
        .into_iter()
        .map(|g| g.def)
        .collect();
    let flows: Vec<(String, sqlx::types::Json<Value>)> =
        sqlx::query_as("SELECT name, document FROM sluice.flows ORDER BY name")
            .fetch_all(pool)
            .await?;
    let flows: Vec<(String, Value)> = flows.into_iter().map(|(n, d)| (n, d.0)).collect();
    let mut env = EnvFile::default();
    for (name, value, secret) in crate::catalog::env::load(pool).await? {
        if secret {
            env.secrets.insert(name);
        } else {
            env.values.insert(name, value);
        }
    }
    let mut conn = pool.acquire().await?;
    let tests: Vec<_> = crate::catalog::flow_tests::all(&mut conn)
        .await?
        .into_iter()
        .filter_map(|(_, name, doc)| {
            let mut file: TestsFile = serde_json::from_value(doc).ok()?;
            file.flow = name;
            Some(file)
        })
        .collect();
    Ok(files::render(&files::State {
        tables: &tables,
        groups: &groups,
        flows: &flows,
        env: &env,
        tests: &tests,
    }))
}
