//! `sluice test [DIR...]`: runs the flow tests of a project against a throwaway database. A
//! private cluster is started in a temporary directory (or a database is created on
//! `SLUICE_DATABASE_URL`), a Sluice is built on it in this process and serves the project's
//! files, applied and published; `client::testing` runs the cases; everything is dropped after.

use crate::client::offline::collect;
use crate::client::testing::{self, CaseResult, Target};
use crate::config::{Config, Secret, TestArgs};
use crate::project::files::TESTS_FILE;
use crate::project::flow_tests::{self, TestsFile};
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(paths: &[PathBuf], update: bool, db: &TestArgs) -> ExitCode {
    let files = match crate::client::read_files(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut found = Vec::new();
    for p in paths {
        collect(p, &[TESTS_FILE], &mut found);
    }
    found.sort();
    found.dedup();
    let mut tests: Vec<(String, PathBuf, TestsFile)> = Vec::new();
    let mut problems = Vec::new();
    for path in found {
        let shown = shown(paths, &path);
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| vec![crate::base::Problem::new("", e.to_string())])
            .and_then(|t| flow_tests::parse(&t));
        match parsed {
            Ok(file) => tests.push((shown, path, file)),
            Err(ps) => problems.extend(ps.into_iter().map(|p| {
                if p.pointer.is_empty() {
                    format!("{shown}: {}", p.message)
                } else {
                    format!("{shown}: {}: {}", p.pointer, p.message)
                }
            })),
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!("sluice: no test was run: {} problem(s)", problems.len());
        return ExitCode::FAILURE;
    }
    if tests.is_empty() {
        eprintln!("sluice: no *.tests.json files found");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let named: Vec<(String, TestsFile)> = tests
        .iter()
        .map(|(shown, _, f)| (shown.clone(), f.clone()))
        .collect();
    let results = runtime.block_on(on_throwaway_database(db, files, &named));
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::FAILURE;
        }
    };
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    for r in &results {
        let verdict = if r.failures.is_empty() {
            "PASS"
        } else {
            "FAIL"
        };
        println!("{verdict} {} › {}", r.file, r.case);
        for f in &r.failures {
            println!("    {f}");
        }
    }
    // `--update` rewrites the expected status and body of the cases whose response differed
    // (cases that passed keep their matchers); other failures stay failures.
    let mut unfixed = failed;
    if update {
        unfixed = results
            .iter()
            .filter(|r| r.failures.len() > r.response_failures)
            .count();
        for (shown, path, file) in &mut tests {
            let mut changed = false;
            for case in &mut file.cases {
                let result = results
                    .iter()
                    .find(|r| &r.file == shown && r.case == case.name);
                let Some(r) = result.filter(|r| r.response_failures > 0) else {
                    continue;
                };
                if let Some((status, body)) = &r.actual {
                    case.then.status = Some(*status);
                    case.then.body = Some(match &case.then.body {
                        Some(old) => flow_tests::updated(old, body),
                        None => body.clone(),
                    });
                    changed = true;
                }
            }
            if changed {
                match std::fs::write(&*path, flow_tests::canonical(file)) {
                    Ok(()) => println!("updated {shown}"),
                    Err(e) => {
                        eprintln!("sluice: {}: {e}", path.display());
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    if unfixed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A tests file as printed: its path below the directory given.
fn shown(paths: &[PathBuf], file: &Path) -> String {
    paths
        .iter()
        .filter(|p| p.is_dir())
        .find_map(|p| file.strip_prefix(p).ok())
        .unwrap_or(file)
        .display()
        .to_string()
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}

/// Starts the cluster or creates the database, serves the project, runs the cases, and drops
/// what it made whatever happened.
async fn on_throwaway_database(
    db: &TestArgs,
    files: std::collections::BTreeMap<String, String>,
    tests: &[(String, TestsFile)],
) -> Result<Vec<CaseResult>, String> {
    let id = unique();
    let (cluster_url, private) = match &db.database_url {
        Some(url) => (url.expose().to_string(), None),
        None => {
            let dir = std::env::temp_dir().join(format!("sluice-test-{id}"));
            let pg = crate::pg::EmbeddedPg::start(&dir)
                .await
                .map_err(|e| format!("cannot start a private Postgres for the tests: {e}"))?;
            (pg.database_url().to_string(), Some((pg, dir)))
        }
    };
    let name = format!("sluice_flowtest_{id}");
    let mut url =
        reqwest::Url::parse(&cluster_url).map_err(|e| format!("the database URL: {e}"))?;
    url.set_path(&format!("/{name}"));
    let admin = |sql: String| {
        let cluster_url = cluster_url.clone();
        async move {
            let mut conn = sqlx::PgConnection::connect(&cluster_url)
                .await
                .map_err(|e| format!("cannot connect to the test cluster: {e}"))?;
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .map_err(|e| format!("{sql}: {e}"))?;
            Ok::<(), String>(())
        }
    };
    admin(format!("CREATE DATABASE \"{name}\"")).await?;
    let result = serve_and_run(url.as_str(), files, tests).await;
    let dropped = admin(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
    if let Some((pg, dir)) = private {
        drop(pg);
        let _ = std::fs::remove_dir_all(dir);
    }
    let results = result?;
    dropped?;
    Ok(results)
}

async fn serve_and_run(
    url: &str,
    files: std::collections::BTreeMap<String, String>,
    tests: &[(String, TestsFile)],
) -> Result<Vec<CaseResult>, String> {
    let email = "tests@sluice.invalid".to_string();
    let password = format!("tests-{}", unique());
    let mut config = Config::for_database(url);
    config.admin = Some((email.clone(), Secret::new(password.clone())));
    // Jobs stay queued, so a case can say which ones its flow enqueued.
    config.jobs.workers = 0;
    let app = crate::startup::App::build(config)
        .await
        .map_err(|e| format!("cannot start Sluice on the test database: {e}"))?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let db = app.state().db.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let outcome = async {
        let args = crate::config::ClientArgs {
            url: base.clone(),
            token: None,
            email: Some(email),
            password: Some(Secret::new(password)),
        };
        let target = Target::connect(&args, db.clone())
            .await
            .map_err(|e| e.to_string())?;
        testing::run(&target, files, tests)
            .await
            .map_err(|e| match e {
                crate::client::ClientError::Refused(ps) => {
                    format!("the project does not apply:\n{}", ps.join("\n"))
                }
                other => other.to_string(),
            })
    }
    .await;
    let _ = stop.send(());
    let _ = server.await;
    db.close().await;
    outcome
}
