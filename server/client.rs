//! The command line's side of the admin API: `sluice export DIR` writes the project of a
//! running Sluice as files (tables, API groups, flows, environment values and secret names);
//! `sluice plan PATH...` shows what applying files would change, and `sluice apply PATH...`
//! applies all of it in one transaction or nothing (docs/PROJECT.md). Files are the unit of
//! review in git.

pub mod offline;
pub mod testing;

use crate::config::ClientArgs;
use crate::project::apply::{Options, Report};
use crate::project::files::{self, Bundle, FLOW_FILE, GROUP_FILE, Kind, TABLE_FILE};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A failure the command reports in one line.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{what}: {status} {body}")]
    Api {
        what: String,
        status: u16,
        body: String,
    },
    #[error("give --token (SLUICE_TOKEN) or --email and --password")]
    NoCredentials,
    #[error("{0}")]
    Files(String),
    /// The server refused the files; nothing was applied.
    #[error("nothing was applied: {} problem(s)", .0.len())]
    Refused(Vec<String>),
}

struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    async fn connect(args: &ClientArgs) -> Result<Admin, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: args.url.clone(),
                message: e.to_string(),
            })?;
        let base = format!("{}/_/api/v1", args.url.trim_end_matches('/'));
        let token = match (&args.token, &args.email, &args.password) {
            (Some(t), _, _) => t.expose().to_string(),
            (None, Some(email), Some(password)) => {
                let admin = Admin {
                    http: http.clone(),
                    base: base.clone(),
                    token: String::new(),
                };
                let body = admin
                    .send(
                        reqwest::Method::POST,
                        "/auth/login",
                        Some(json!({"email": email, "password": password.expose()})),
                        "log in",
                    )
                    .await?;
                body["token"].as_str().unwrap_or_default().to_string()
            }
            _ => return Err(ClientError::NoCredentials),
        };
        Ok(Admin { http, base, token })
    }

    async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Result<(u16, String), ClientError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(rev) = if_match {
            req = req.header("if-match", format!("\"{rev}\""));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, text))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        what: &str,
    ) -> Result<Value, ClientError> {
        self.send_if(method, path, body, None, what).await
    }

    async fn send_if(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Value, ClientError> {
        let (status, text) = self.raw(method, path, body, if_match).await?;
        if !(200..300).contains(&status) {
            return Err(ClientError::Api {
                what: what.to_string(),
                status,
                body: text,
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Writes the project's files into `dir` (created if needed) and removes the project files
/// there that the project no longer has (`*.table.json`, `*.group.json`, `*.flow.json`,
/// `*.tests.json`, `env.json` directly in `dir`; other files stay). Returns the number of files
/// written.
pub async fn export(args: &ClientArgs, dir: &Path) -> Result<usize, ClientError> {
    let admin = Admin::connect(args).await?;
    let bundle: Bundle = serde_json::from_value(
        admin
            .send(reqwest::Method::GET, "/project", None, "export the project")
            .await?,
    )
    .map_err(|e| ClientError::Files(format!("the server sent no project: {e}")))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| ClientError::Files(format!("{}: {e}", dir.display())))?;
    for name in bundle.files.keys() {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains(['/', '\\'])
            && !name.contains("..");
        if !plain {
            return Err(ClientError::Files(format!(
                "the server named a file `{name}`, which is not a plain file name; nothing was written"
            )));
        }
    }
    for entry in std::fs::read_dir(dir)
        .map_err(|e| ClientError::Files(format!("{}: {e}", dir.display())))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        let project_file = matches!(
            files::kind(&name),
            Kind::Table | Kind::Group | Kind::Flow | Kind::Tests | Kind::Env
        );
        if project_file && entry.path().is_file() && !bundle.files.contains_key(&name) {
            std::fs::remove_file(entry.path())
                .map_err(|e| ClientError::Files(format!("{}: {e}", entry.path().display())))?;
        }
    }
    for (name, text) in &bundle.files {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| ClientError::Files(format!("{}: {e}", path.display())))?;
    }
    Ok(bundle.files.len())
}

/// Reads the project files under `paths` (directories, searched recursively, or single
/// files): tables, groups, flows, flow tests and `env.json`, each named by its path below the
/// directory given (a single file by its name).
pub fn read_files(paths: &[PathBuf]) -> Result<BTreeMap<String, String>, ClientError> {
    let mut out = BTreeMap::new();
    for p in paths {
        let mut found = Vec::new();
        offline::collect(
            p,
            &[
                TABLE_FILE,
                GROUP_FILE,
                FLOW_FILE,
                files::TESTS_FILE,
                files::ENV_FILE,
            ],
            &mut found,
        );
        for file in found {
            let name = if p.is_dir() {
                file.strip_prefix(p).unwrap_or(&file).to_path_buf()
            } else {
                PathBuf::from(file.file_name().unwrap_or_default())
            };
            let key = name
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(&file)
                .map_err(|e| ClientError::Files(format!("{}: {e}", file.display())))?;
            if out.insert(key.clone(), text).is_some() {
                return Err(ClientError::Files(format!(
                    "two files are named `{key}` among the paths given"
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(ClientError::Files(
            "no project files (*.table.json, *.group.json, *.flow.json, *.tests.json, env.json) found"
                .into(),
        ));
    }
    Ok(out)
}

/// Plans (`apply == false`) or applies the project in `files` on the server. Problems found
/// offline stop it before anything is sent; a refusal by the server is
/// [`ClientError::Refused`], with every problem.
pub async fn plan_or_apply(
    args: &ClientArgs,
    files: BTreeMap<String, String>,
    opts: Options,
    apply: bool,
) -> Result<Report, ClientError> {
    let (_, problems) = files::parse(&files);
    if !problems.is_empty() {
        return Err(ClientError::Refused(
            problems.iter().map(ToString::to_string).collect(),
        ));
    }
    let admin = Admin::connect(args).await?;
    let body = json!({
        "format": files::FORMAT,
        "version": 1,
        "files": files,
        "allow_drop": opts.allow_drop,
        "prune": opts.prune,
        "publish": opts.publish,
    });
    let path = if apply {
        "/project/apply"
    } else {
        "/project/plan"
    };
    let (status, text) = admin
        .raw(reqwest::Method::POST, path, Some(body), None)
        .await?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let problems = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let file = p["file"].as_str().unwrap_or_default();
                let pointer = p["pointer"].as_str().unwrap_or_default();
                let message = p["message"].as_str().unwrap_or_default();
                if pointer.is_empty() {
                    format!("{file}: {message}")
                } else {
                    format!("{file}: {pointer}: {message}")
                }
            })
            .collect()
    };
    match status {
        200 => {
            let found = problems(&value["problems"]);
            if !found.is_empty() {
                return Err(ClientError::Refused(found));
            }
            serde_json::from_value(value).map_err(|e| ClientError::Api {
                what: "read the plan".into(),
                status,
                body: e.to_string(),
            })
        }
        422 if value["error"]["code"] == "project.invalid" => {
            Err(ClientError::Refused(problems(&value["error"]["details"])))
        }
        _ => Err(ClientError::Api {
            what: if apply { "apply" } else { "plan" }.into(),
            status,
            body: text,
        }),
    }
}
