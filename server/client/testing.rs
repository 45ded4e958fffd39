//! Runs flow tests (`sluice test`, docs/TESTING.md) against a Sluice that serves the project
//! under test on a throwaway database: each case resets the tables and queued jobs, inserts its
//! rows through the row API, sets its environment values, runs the flow through the debug run
//! (`POST /_/api/v1/flows/{id}/run`, committed, with the case's frozen clock and canned HTTP
//! answers, so no call reaches the network), and compares what happened with what it expects.

use super::ClientError;
use crate::config::ClientArgs;
use crate::project::flow_tests::{self, Case, TestsFile};
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};

/// The outcome of one case.
#[derive(Debug)]
pub struct CaseResult {
    pub file: String,
    pub case: String,
    /// Why it failed; empty when it passed.
    pub failures: Vec<String>,
    /// How many of the failures are about the response's status or body (what `--update`
    /// rewrites).
    pub response_failures: usize,
    /// What happened, for `--update`: the status and body of the response.
    pub actual: Option<(u16, Value)>,
}

/// A Sluice serving the project under test.
pub struct Target {
    admin: super::Admin,
    /// The throwaway database itself (to reset tables and read rows and jobs).
    db: PgPool,
}

struct Flow {
    id: i64,
    doc: Value,
}

impl Target {
    /// Signs in to the Sluice at `args.url`, which serves on `db`.
    pub async fn connect(args: &ClientArgs, db: PgPool) -> Result<Target, ClientError> {
        Ok(Target {
            admin: super::Admin::connect(args).await?,
            db,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), ClientError> {
        let (status, text) = self.admin.raw(method, path, body, None).await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        what: &str,
    ) -> Result<Value, ClientError> {
        self.admin.send(method, path, body, what).await
    }
}

/// Applies `files` to the target (published) and runs every case of `tests`.
pub async fn run(
    target: &Target,
    files: BTreeMap<String, String>,
    tests: &[(String, TestsFile)],
) -> Result<Vec<CaseResult>, ClientError> {
    let project_env: BTreeMap<String, String> = files
        .get(crate::project::files::ENV_FILE)
        .and_then(|t| serde_json::from_str::<crate::project::files::EnvFile>(t).ok())
        .map(|e| e.values)
        .unwrap_or_default();
    let (status, report) = target
        .call(
            reqwest::Method::POST,
            "/project/apply",
            Some(json!({"files": files, "publish": true})),
        )
        .await?;
    if status != 200 {
        let problems: Vec<String> = report["error"]["details"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}: {}: {}",
                    p["file"].as_str().unwrap_or_default(),
                    p["pointer"].as_str().unwrap_or_default(),
                    p["message"].as_str().unwrap_or_default()
                )
            })
            .collect();
        return Err(ClientError::Refused(problems));
    }
    let listed = target
        .ok(reqwest::Method::GET, "/flows", None, "list flows")
        .await?;
    let mut flows = BTreeMap::new();
    for f in listed["flows"].as_array().into_iter().flatten() {
        let (Some(id), Some(name)) = (f["id"].as_i64(), f["name"].as_str()) else {
            continue;
        };
        let record = target
            .ok(
                reqwest::Method::GET,
                &format!("/flows/{id}"),
                None,
                "read a flow",
            )
            .await?;
        flows.insert(
            name.to_string(),
            Flow {
                id,
                doc: record["document"].clone(),
            },
        );
    }
    // Jobs of table and schedule triggers are enqueued by the server on its own; a case
    // expects only the jobs its flow enqueues.
    let background: BTreeSet<String> = flows
        .iter()
        .filter(|(_, f)| {
            matches!(
                f.doc["trigger"]["kind"].as_str(),
                Some("table") | Some("schedule")
            )
        })
        .map(|(n, _)| n.clone())
        .collect();
    let tables = table_order(
        &target
            .ok(reqwest::Method::GET, "/tables", None, "list tables")
            .await?,
    );
    let groups = target
        .ok(reqwest::Method::GET, "/groups", None, "list API groups")
        .await?;
    let mut results = Vec::new();
    for (file, tests) in tests {
        for case in &tests.cases {
            let mut result = CaseResult {
                file: file.clone(),
                case: case.name.clone(),
                failures: Vec::new(),
                response_failures: 0,
                actual: None,
            };
            match flows.get(&tests.flow) {
                None => result
                    .failures
                    .push(format!("the project has no flow named `{}`", tests.flow)),
                Some(flow) => {
                    let cx = CaseCx {
                        target,
                        flow,
                        tables: &tables,
                        groups: &groups,
                        background: &background,
                    };
                    if let Err(e) = cx.run_case(case, &mut result).await {
                        result.failures.push(e.to_string());
                    }
                    cx.restore_env(case, &project_env).await?;
                }
            }
            results.push(result);
        }
    }
    Ok(results)
}

/// Table names with the tables a table references before it (rows are inserted in this order).
fn table_order(listed: &Value) -> Vec<String> {
    let mut pending: Vec<(String, Vec<String>)> = listed["tables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let name = t["name"].as_str()?.to_string();
            let refs = t["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["table"].as_str())
                .filter(|r| *r != name)
                .map(str::to_string)
                .collect();
            Some((name, refs))
        })
        .collect();
    let mut order: Vec<String> = Vec::new();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|(_, refs)| {
                refs.iter()
                    .all(|r| order.contains(r) || !pending.iter().any(|(n, _)| n == r))
            })
            .unwrap_or(0);
        order.push(pending.remove(ready).0);
    }
    order
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

struct CaseCx<'a> {
    target: &'a Target,
    flow: &'a Flow,
    tables: &'a [String],
    groups: &'a Value,
    background: &'a BTreeSet<String>,
}

impl CaseCx<'_> {
    async fn run_case(&self, case: &Case, result: &mut CaseResult) -> Result<(), ClientError> {
        let db_error = |e: sqlx::Error| ClientError::Files(format!("the test database: {e}"));
        // A clean slate: no rows, identities from 1, no queued jobs, no end-user sessions.
        if !self.tables.is_empty() {
            let list: Vec<String> = self
                .tables
                .iter()
                .map(|t| format!("app.{}", quoted(t)))
                .collect();
            sqlx::query(&format!(
                "TRUNCATE {} RESTART IDENTITY CASCADE",
                list.join(", ")
            ))
            .execute(&self.target.db)
            .await
            .map_err(db_error)?;
        }
        sqlx::query("DELETE FROM sluice.jobs")
            .execute(&self.target.db)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM sluice.user_sessions")
            .execute(&self.target.db)
            .await
            .map_err(db_error)?;
        for (name, value) in &case.given.env {
            self.target
                .ok(
                    reqwest::Method::PUT,
                    &format!("/env/{name}"),
                    Some(json!({"value": value})),
                    &format!("set env {name}"),
                )
                .await?;
        }
        let given: Vec<&String> = self
            .tables
            .iter()
            .filter(|t| case.given.rows.contains_key(*t))
            .chain(case.given.rows.keys().filter(|t| !self.tables.contains(t)))
            .collect();
        for table in given {
            for (i, row) in case.given.rows[table].iter().enumerate() {
                let (status, body) = self
                    .target
                    .call(
                        reqwest::Method::POST,
                        &format!("/tables/{table}/rows"),
                        Some(Value::Object(row.clone())),
                    )
                    .await?;
                if status != 201 {
                    result.failures.push(format!(
                        "given.rows.{table}[{i}] was refused: {status} {}",
                        body["error"]["message"].as_str().unwrap_or_default()
                    ));
                    return Ok(());
                }
            }
        }
        let request = match self.request(case) {
            Ok(r) => r,
            Err(m) => {
                result.failures.push(m);
                return Ok(());
            }
        };
        let answer = self
            .target
            .ok(
                reqwest::Method::POST,
                &format!("/flows/{}/run", self.flow.id),
                Some(request),
                "run the flow",
            )
            .await?;
        let response = &answer["response"];
        let status = response["status"].as_u64().unwrap_or_default() as u16;
        let body = response["body"].clone();
        for call in answer["http_calls"].as_array().into_iter().flatten() {
            if call["answered"] == false {
                result.failures.push(format!(
                    "unexpected outbound call {} {} (no canned answer in given.http)",
                    call["method"].as_str().unwrap_or_default(),
                    call["url"].as_str().unwrap_or_default()
                ));
            }
        }
        let then = &case.then;
        let before = result.failures.len();
        if let Some(expected) = then.status
            && expected != status
        {
            let why = answer["error"]["message"].as_str().unwrap_or_default();
            result
                .failures
                .push(format!("status: expected {expected}, got {status} {why}"));
        }
        if let Some(expected) = &then.body {
            flow_tests::compare(expected, &body, "", &mut result.failures);
        }
        for (name, expected) in &then.headers {
            let actual = response["headers"]
                .as_object()
                .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .map(|(_, v)| v.clone());
            match actual {
                Some(v) => flow_tests::compare(
                    expected,
                    &v,
                    &format!("header {}", name.to_ascii_lowercase()),
                    &mut result.failures,
                ),
                None => result
                    .failures
                    .push(format!("header {name}: missing (expected {expected})")),
            }
        }
        result.response_failures = result.failures.len() - before;
        for p in answer["schema_problems"].as_array().into_iter().flatten() {
            result.failures.push(format!(
                "the body does not fit the schema of respond node `{}`: {}: {}",
                p["node"].as_str().unwrap_or_default(),
                p["pointer"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("/"),
                p["message"].as_str().unwrap_or_default()
            ));
        }
        for (table, rows) in &then.rows {
            if !self.tables.contains(table) {
                result
                    .failures
                    .push(format!("then.rows names `{table}`, which is not a table"));
                continue;
            }
            let actual: Vec<sqlx::types::Json<Value>> = sqlx::query_scalar(&format!(
                "SELECT to_jsonb(t) FROM app.{} t ORDER BY 1",
                quoted(table)
            ))
            .fetch_all(&self.target.db)
            .await
            .map_err(db_error)?;
            let actual = Value::Array(actual.into_iter().map(|j| j.0).collect());
            let mut found = Vec::new();
            flow_tests::compare(&Value::Array(rows.clone()), &actual, "", &mut found);
            result
                .failures
                .extend(found.into_iter().map(|f| format!("rows of {table}: {f}")));
        }
        if let Some(jobs) = &then.jobs {
            let actual: Vec<(String, sqlx::types::Json<Value>)> =
                sqlx::query_as("SELECT kind, args FROM sluice.jobs ORDER BY id")
                    .fetch_all(&self.target.db)
                    .await
                    .map_err(db_error)?;
            let actual: Vec<Value> = actual
                .into_iter()
                .filter(|(kind, _)| !self.background.contains(kind))
                .map(|(kind, args)| json!({"flow": kind, "input": args.0}))
                .collect();
            let expected: Vec<Value> = jobs
                .iter()
                .map(|j| match &j.input {
                    Some(input) => json!({"flow": j.flow, "input": input}),
                    None => json!({"flow": j.flow}),
                })
                .collect();
            let mut found = Vec::new();
            flow_tests::compare(
                &Value::Array(expected),
                &Value::Array(actual),
                "",
                &mut found,
            );
            result
                .failures
                .extend(found.into_iter().map(|f| format!("jobs: {f}")));
        }
        result.actual = Some((status, body));
        Ok(())
    }

    /// The debug run's body for `case`: the request (parameters read from the path), the
    /// caller, the clock and the canned answers (always given, so nothing reaches the network).
    fn request(&self, case: &Case) -> Result<Value, String> {
        let when = &case.when;
        let mut run = Map::new();
        run.insert("commit".into(), Value::Bool(true));
        run.insert(
            "http".into(),
            serde_json::to_value(&case.given.http).unwrap_or_default(),
        );
        if let Some(now) = &case.given.now {
            run.insert("now".into(), Value::String(now.clone()));
        }
        if let Some(user) = &case.given.user {
            run.insert(
                "as_user".into(),
                json!({"id": user.id, "claims": user.claims}),
            );
        }
        if let Some(token) = &when.token {
            run.insert("token".into(), Value::String(token.clone()));
        }
        let doc = &self.flow.doc;
        if doc.get("trigger").is_some() {
            run.insert("input".into(), when.input.clone().unwrap_or(json!({})));
            return Ok(Value::Object(run));
        }
        let endpoint = &doc["endpoint"];
        if endpoint.is_null() {
            return Err("a function is tested through the endpoints that call it".into());
        }
        let method = endpoint["method"].as_str().unwrap_or("GET");
        if let Some(m) = &when.method
            && !m.eq_ignore_ascii_case(method)
        {
            return Err(format!("when.method is {m}, but the flow answers {method}"));
        }
        let group = endpoint["group"]
            .as_str()
            .unwrap_or(crate::base::DEFAULT_GROUP);
        let base = self.groups["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["name"] == group)
            .and_then(|g| g["base_path"].as_str())
            .unwrap_or_default();
        let pattern = format!("{base}{}", endpoint["path"].as_str().unwrap_or("/"));
        let params = match &when.path {
            Some(path) => path_params(&pattern, path).ok_or_else(|| {
                format!("when.path {path} is not a path of the flow's route {pattern}")
            })?,
            None => Map::new(),
        };
        run.insert("params".into(), Value::Object(params));
        run.insert("query".into(), Value::Object(when.query.clone()));
        run.insert("headers".into(), Value::Object(when.headers.clone()));
        run.insert("body".into(), when.body.clone());
        Ok(Value::Object(run))
    }

    /// Puts back the environment values a case changed.
    async fn restore_env(
        &self,
        case: &Case,
        project: &BTreeMap<String, String>,
    ) -> Result<(), ClientError> {
        for name in case.given.env.keys() {
            match project.get(name) {
                Some(v) => {
                    self.target
                        .ok(
                            reqwest::Method::PUT,
                            &format!("/env/{name}"),
                            Some(json!({"value": v})),
                            "restore env",
                        )
                        .await?;
                }
                None => {
                    self.target
                        .ok(
                            reqwest::Method::DELETE,
                            &format!("/env/{name}"),
                            None,
                            "restore env",
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// The parameters of `path` under route `pattern` (`/todos/{id}` and `/todos/7` give
/// `{"id": "7"}`), or `None` when the path is not one of the route's.
fn path_params(pattern: &str, path: &str) -> Option<Map<String, Value>> {
    let split = |s: &str| -> Vec<String> {
        s.split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (pattern, path) = (
        split(pattern),
        split(path.split('?').next().unwrap_or(path)),
    );
    if pattern.len() != path.len() {
        return None;
    }
    let mut params = Map::new();
    for (p, v) in pattern.iter().zip(&path) {
        match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => {
                params.insert(name.to_string(), Value::String(v.clone()));
            }
            None if p == v => {}
            None => return None,
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_from_the_path() {
        assert_eq!(
            path_params("/shop/v1/todos/{id}", "/shop/v1/todos/7"),
            Some(Map::from_iter([("id".to_string(), json!("7"))]))
        );
        assert_eq!(path_params("/todos/{id}", "/todos"), None);
        assert_eq!(path_params("/todos", "/items"), None);
        assert_eq!(path_params("/", "/"), Some(Map::new()));
    }

    #[test]
    fn referenced_tables_come_first() {
        let listed = json!({"tables": [
            {"name": "books", "fields": [{"name": "author", "table": "authors"}]},
            {"name": "authors", "fields": [{"name": "boss", "table": "authors"}]}
        ]});
        assert_eq!(table_order(&listed), vec!["authors", "books"]);
    }
}
