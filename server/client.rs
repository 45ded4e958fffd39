//! The command line's side of the admin API: `sluice export DIR` writes every flow (canonical
//! JSON), table definition and API group of a running Sluice into files; `sluice import PATH...`
//! checks flow and group files offline, all of them first, then creates or replaces each group
//! and then each flow by name (and publishes flows when asked). Files are the unit of review in
//! git.

pub mod offline;

use crate::config::ClientArgs;
use serde_json::{Value, json};
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
    /// The server refused a file after earlier files were imported; those stay imported
    /// (each file is its own request, there is no rollback across files).
    #[error(
        "{source}\nthe import stopped there; {} earlier file(s) were imported and stay imported (listed above)",
        done.len()
    )]
    Partial {
        done: Vec<Imported>,
        source: Box<ClientError>,
    },
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

/// Writes `<name>.flow.json` for every flow (its draft, canonical) and `<name>.table.json`
/// for every table into `dir`. Returns the number of files written.
pub async fn export(args: &ClientArgs, dir: &Path) -> Result<usize, ClientError> {
    let admin = Admin::connect(args).await?;
    std::fs::create_dir_all(dir)
        .map_err(|e| ClientError::Files(format!("{}: {e}", dir.display())))?;
    let mut written = 0;
    let flows = admin
        .send(reqwest::Method::GET, "/flows", None, "list flows")
        .await?;
    for f in flows["flows"].as_array().into_iter().flatten() {
        let (Some(id), Some(name)) = (f["id"].as_i64(), f["name"].as_str()) else {
            continue;
        };
        let (status, text) = admin
            .raw(
                reqwest::Method::GET,
                &format!("/flows/{id}/export"),
                None,
                None,
            )
            .await?;
        if status != 200 {
            return Err(ClientError::Api {
                what: format!("export flow {name}"),
                status,
                body: text,
            });
        }
        write(&dir.join(format!("{name}.flow.json")), &text)?;
        written += 1;
    }
    let tables = admin
        .send(reqwest::Method::GET, "/tables", None, "list tables")
        .await?;
    for t in tables["tables"].as_array().into_iter().flatten() {
        let Some(name) = t["name"].as_str() else {
            continue;
        };
        let mut def = t.clone();
        if let Some(o) = def.as_object_mut() {
            o.remove("version");
        }
        let mut text = serde_json::to_string_pretty(&def).unwrap_or_default();
        text.push('\n');
        write(&dir.join(format!("{name}.table.json")), &text)?;
        written += 1;
    }
    let groups = admin
        .send(reqwest::Method::GET, "/groups", None, "list API groups")
        .await?;
    for g in groups["groups"].as_array().into_iter().flatten() {
        let Some(name) = g["name"].as_str() else {
            continue;
        };
        let mut def = g.clone();
        if let Some(o) = def.as_object_mut() {
            for bookkeeping in ["version", "created_at", "updated_at"] {
                o.remove(bookkeeping);
            }
        }
        let mut text = serde_json::to_string_pretty(&def).unwrap_or_default();
        text.push('\n');
        write(&dir.join(format!("{name}.group.json")), &text)?;
        written += 1;
    }
    Ok(written)
}

fn write(path: &Path, text: &str) -> Result<(), ClientError> {
    std::fs::write(path, text).map_err(|e| ClientError::Files(format!("{}: {e}", path.display())))
}

/// What `import` did with one file.
#[derive(Debug)]
pub struct Imported {
    pub file: PathBuf,
    pub name: String,
    pub action: &'static str,
    /// Whether the flow was also published.
    pub published: bool,
}

/// Whether a file holds an API group (`<name>.group.json`) rather than a flow.
pub fn is_group_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".group.json"))
}

/// Creates or replaces each API group of `groups` (checked already), by name.
async fn import_groups(
    admin: &Admin,
    groups: Vec<(PathBuf, crate::catalog::groups::GroupDef)>,
    done: &mut Vec<Imported>,
) -> Result<(), ClientError> {
    for (file, def) in groups {
        let name = def.name.clone();
        let body = serde_json::to_value(&def).unwrap_or(Value::Null);
        let (status, text) = admin
            .raw(reqwest::Method::GET, &format!("/groups/{name}"), None, None)
            .await?;
        let action = match status {
            200 => {
                let current: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let version = current["version"].to_string();
                admin
                    .send_if(
                        reqwest::Method::PUT,
                        &format!("/groups/{name}"),
                        Some(body),
                        Some(&version),
                        &format!("replace group {name}"),
                    )
                    .await?;
                "replaced group"
            }
            404 => {
                admin
                    .send(
                        reqwest::Method::POST,
                        "/groups",
                        Some(body),
                        &format!("create group {name}"),
                    )
                    .await?;
                "created group"
            }
            _ => {
                return Err(ClientError::Api {
                    what: format!("read group {name}"),
                    status,
                    body: text,
                });
            }
        };
        done.push(Imported {
            file,
            name,
            action,
            published: false,
        });
    }
    Ok(())
}

/// Imports flow files: every file is read and checked offline first, and nothing is written
/// unless all pass; then each flow is created, or replaced when a flow of that name exists,
/// and published when `publish` is set. The server checks each again against its tables; a
/// refusal stops the import at that file, and the files imported before it stay imported
/// ([`ClientError::Partial`] lists them).
pub async fn import(
    args: &ClientArgs,
    files: &[PathBuf],
    publish: bool,
) -> Result<Vec<Imported>, ClientError> {
    let mut docs = Vec::new();
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ClientError::Files(format!("{}: {e}", file.display())))?;
        match serde_json::from_str::<Value>(&text) {
            Err(e) => problems.push(format!("{}: not JSON: {e}", file.display())),
            Ok(doc) if is_group_file(file) => {
                match serde_json::from_value::<crate::catalog::groups::GroupDef>(doc) {
                    Err(e) => problems.push(format!("{}: not an API group: {e}", file.display())),
                    Ok(def) => {
                        let found = def.problems();
                        if found.is_empty() {
                            groups.push((file.clone(), def));
                        }
                        problems.extend(
                            found.into_iter().map(|p| {
                                format!("{}: {}: {}", file.display(), p.pointer, p.message)
                            }),
                        );
                    }
                }
            }
            Ok(doc) => match crate::nodes::compile(&doc, None) {
                Err(diags) => {
                    problems.extend(diags.iter().map(|d| format!("{}: {d}", file.display())))
                }
                Ok(plan) => docs.push((file.clone(), plan.name, doc)),
            },
        }
    }
    if !problems.is_empty() {
        return Err(ClientError::Files(format!(
            "nothing was imported:\n{}",
            problems.join("\n")
        )));
    }
    let admin = Admin::connect(args).await?;
    let existing = admin
        .send(reqwest::Method::GET, "/flows", None, "list flows")
        .await?;
    let mut done = Vec::new();
    match import_checked(&admin, groups, docs, &existing, publish, &mut done).await {
        Ok(()) => Ok(done),
        Err(e) if done.is_empty() => Err(e),
        Err(e) => Err(ClientError::Partial {
            done,
            source: Box::new(e),
        }),
    }
}

/// Sends checked groups and flows one by one, recording each in `done` as it lands.
async fn import_checked(
    admin: &Admin,
    groups: Vec<(PathBuf, crate::catalog::groups::GroupDef)>,
    docs: Vec<(PathBuf, String, Value)>,
    existing: &Value,
    publish: bool,
    done: &mut Vec<Imported>,
) -> Result<(), ClientError> {
    // Groups first: the flows' publishes need them.
    import_groups(admin, groups, done).await?;
    for (file, name, doc) in docs {
        let current = existing["flows"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["name"] == name.as_str());
        let (record, action) = match current {
            Some(f) => {
                let id = f["id"].as_i64().unwrap_or_default();
                let rev = f["rev"].as_str().unwrap_or_default();
                (
                    admin
                        .send_if(
                            reqwest::Method::PUT,
                            &format!("/flows/{id}"),
                            Some(doc),
                            Some(rev),
                            &format!("replace {name}"),
                        )
                        .await?,
                    "replaced",
                )
            }
            None => (
                admin
                    .send(
                        reqwest::Method::POST,
                        "/flows",
                        Some(doc),
                        &format!("create {name}"),
                    )
                    .await?,
                "created",
            ),
        };
        if publish {
            let id = record["id"].as_i64().unwrap_or_default();
            let rev = record["rev"].as_str().unwrap_or_default().to_string();
            admin
                .send_if(
                    reqwest::Method::POST,
                    &format!("/flows/{id}/publish"),
                    None,
                    Some(&rev),
                    &format!("publish {name}"),
                )
                .await?;
        }
        done.push(Imported {
            file,
            name,
            action,
            published: publish,
        });
    }
    Ok(())
}
