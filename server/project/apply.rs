//! Plan and apply a whole project from its files (docs/PROJECT.md). Both run the same steps
//! in one transaction: tables (matched by stable id, else by name: created, changed through
//! the table planner, dropped only when allowed), API groups, flows (drafts created or
//! replaced, published when asked, removed when pruning), environment values. Then every check
//! is judged on the state after all of it: the access rules of every table, every flow of the
//! files, and every flow that would be served. A plan rolls the transaction back and reports;
//! an apply commits only when nothing was refused, so it is all or nothing.

use super::files::{self, FileProblem, Project};
use super::table_changes::{prepare_change, referencing_fields};
use crate::catalog::groups::{self, GroupError};
use crate::flow::canonical;
use crate::flow::node::Catalog;
use crate::flow::trigger::Trigger;
use crate::tables::ddl::{self, Change, Plan};
use crate::tables::def::{TableDef, Tables, is_id};
use crate::tables::store::{self, TableError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet};

/// How far an apply may go beyond creating and changing.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Drop tables that are not in the files, and fields a table file no longer has (with
    /// their data).
    #[serde(default)]
    pub allow_drop: bool,
    /// Delete flows and API groups that are not in the files.
    #[serde(default)]
    pub prune: bool,
    /// Publish every flow of the files whose document is not the one published.
    #[serde(default)]
    pub publish: bool,
}

/// What happens to one table, group or flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Change,
    Unchanged,
    /// A table dropped with its rows.
    Drop,
    /// A flow or group removed (`prune`).
    Delete,
    /// On the instance but not in the files; left as it is.
    Kept,
}

impl Action {
    fn changes(self) -> bool {
        !matches!(self, Action::Unchanged | Action::Kept)
    }
}

/// One line of the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub action: Action,
    /// The file it comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// For tables: the steps of the change. For flows: what else happens (published).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// For flows: whether this apply publishes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub publish: bool,
}

impl Item {
    fn new(name: &str, action: Action, file: Option<&str>) -> Item {
        Item {
            name: name.to_string(),
            action,
            file: file.map(str::to_string),
            details: Vec::new(),
            publish: false,
        }
    }
}

/// What happens to environment values. Values are per instance: an apply adds the names the
/// instance lacks and never overwrites or deletes one.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct EnvPlan {
    /// Values added with the file's value.
    pub added: Vec<String>,
    /// Values whose instance value differs from the file's; the instance's is kept.
    pub differs: Vec<String>,
    /// Secrets the files name that this instance does not have: set them here (their values
    /// never travel in files).
    pub missing_secrets: Vec<String>,
    /// Names on the instance that the files do not have; kept.
    pub not_in_files: Vec<String>,
}

/// The plan, or what was applied.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub applied: bool,
    pub tables: Vec<Item>,
    pub groups: Vec<Item>,
    pub flows: Vec<Item>,
    /// Flow tests, by the flow they test.
    #[serde(default)]
    pub tests: Vec<Item>,
    pub env: EnvPlan,
    /// Files that an apply does not read (tests, anything else).
    pub skipped: Vec<String>,
    /// Why nothing was (or would be) applied; empty when it can be.
    pub problems: Vec<FileProblem>,
}

impl Report {
    /// Whether the apply changes anything.
    pub fn changes(&self) -> bool {
        self.tables
            .iter()
            .chain(&self.groups)
            .chain(&self.flows)
            .chain(&self.tests)
            .any(|i| i.action.changes() || i.publish)
            || !self.env.added.is_empty()
    }
}

/// Plans (`apply == false`: the steps run and are rolled back) or applies the project in
/// `files`. Refusals are in the report's `problems` (and then nothing is applied); an error
/// is a failure of the database itself.
pub async fn run(
    pool: &PgPool,
    files: &BTreeMap<String, String>,
    opts: Options,
    user_id: i64,
    apply: bool,
) -> Result<Report, sqlx::Error> {
    let (project, problems) = files::parse(files);
    let mut report = Report {
        skipped: project.skipped.clone(),
        problems,
        ..Report::default()
    };
    if !report.problems.is_empty() {
        return Ok(report);
    }
    let mut tx = pool.begin().await?;
    store::lock(&mut tx)
        .await
        .map_err(|e| db_error(TableError::Db(e)))?;
    let mut run = Run {
        project: &project,
        opts,
        user_id,
        report: &mut report,
    };
    let tables = run.tables(&mut tx).await?;
    run.groups(&mut tx).await?;
    let ids = run.flows(&mut tx, &tables).await?;
    run.tests(&mut tx, &ids).await?;
    run.prune_groups(&mut tx).await?;
    run.env(&mut tx).await?;
    report.problems.sort_by(|a, b| a.file.cmp(&b.file));
    if apply && report.problems.is_empty() {
        tx.commit().await?;
        report.applied = true;
    } else {
        tx.rollback().await?;
    }
    Ok(report)
}

fn db_error(e: TableError) -> sqlx::Error {
    match e {
        TableError::Db(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

struct Run<'a> {
    project: &'a Project,
    opts: Options,
    user_id: i64,
    report: &'a mut Report,
}

/// A flow as the instance has it.
struct Stored {
    id: i64,
    name: String,
    draft: Value,
    published_rev: Option<String>,
    published: Option<Value>,
}

const SAVEPOINT: &str = "SAVEPOINT sluice_project_step";
const RELEASE: &str = "RELEASE SAVEPOINT sluice_project_step";
const ROLLBACK: &str = "ROLLBACK TO SAVEPOINT sluice_project_step";

async fn exec(tx: &mut Transaction<'_, Postgres>, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(&mut **tx).await.map(|_| ())
}

/// Ends a step that ran inside [`SAVEPOINT`]: kept when it succeeded, undone when it failed
/// (so the transaction goes on and later steps can report their problems too).
async fn end_step<T, E>(
    tx: &mut Transaction<'_, Postgres>,
    result: &Result<T, E>,
) -> Result<(), sqlx::Error> {
    exec(tx, if result.is_ok() { RELEASE } else { ROLLBACK }).await
}

impl Run<'_> {
    fn problem(&mut self, file: &str, pointer: impl Into<String>, message: impl Into<String>) {
        self.report
            .problems
            .push(FileProblem::new(file, pointer, message));
    }

    fn table_error(&mut self, file: &str, e: TableError) -> Result<(), sqlx::Error> {
        match e {
            TableError::Invalid(ps) => {
                for p in ps {
                    let pointer = p.pointer.strip_prefix("/table").unwrap_or(&p.pointer);
                    self.problem(file, pointer.to_string(), p.message);
                }
            }
            TableError::StepFailed {
                step, hint, cause, ..
            } => self.problem(file, "", format!("{step}: {hint} ({cause})")),
            TableError::Db(e) => return Err(e),
            other => self.problem(file, "", other.to_string()),
        }
        Ok(())
    }

    /// Creates, changes and drops tables; returns the tables after the apply.
    async fn tables(&mut self, tx: &mut Transaction<'_, Postgres>) -> Result<Tables, sqlx::Error> {
        let current = store::all_in(tx).await.map_err(db_error)?;
        let mut running = current.clone();
        let mut creates: Vec<(&str, TableDef)> = Vec::new();
        let mut changes: Vec<(&str, TableDef, TableDef)> = Vec::new();
        let mut matched = BTreeSet::new();
        for (file, def) in &self.project.tables {
            let by_id = current
                .values()
                .find(|t| !def.id.is_empty() && t.id == def.id);
            let by_name = current.get(def.name.as_str());
            match (by_id, by_name) {
                (Some(old), _) => {
                    matched.insert(old.id.clone());
                    changes.push((file, old.clone(), def.clone()));
                }
                (None, Some(old)) if def.id.is_empty() => {
                    matched.insert(old.id.clone());
                    changes.push((file, old.clone(), def.clone()));
                }
                (None, Some(old)) => {
                    matched.insert(old.id.clone());
                    self.problem(
                        file,
                        "/id",
                        format!(
                            "table `{}` exists on this instance with id {}, not {}: it was not made from these files (remove the ids from the file to match it by name)",
                            def.name, old.id, def.id
                        ),
                    );
                }
                (None, None) => creates.push((file, def.clone())),
            }
        }
        // Tables that reference others come after them.
        let mut ordered = Vec::new();
        while !creates.is_empty() {
            let ready = creates.iter().position(|(_, d)| {
                d.fields.iter().filter_map(|f| f.table.as_ref()).all(|t| {
                    t == &d.name
                        || running.contains_key(t.as_str())
                        || !creates.iter().any(|(_, c)| &c.name == t)
                        || ordered.iter().any(|(_, c): &(&str, TableDef)| &c.name == t)
                })
            });
            ordered.push(creates.remove(ready.unwrap_or(0)));
        }
        for (file, def) in ordered {
            self.create_table(tx, file, def, &mut running).await?;
        }
        for (file, old, new) in changes {
            self.change_table(tx, file, &old, new, &mut running).await?;
        }
        for old in current.values().filter(|t| !matched.contains(&t.id)) {
            if self.opts.allow_drop {
                self.drop_table(tx, old, &mut running).await?;
            } else {
                self.report
                    .tables
                    .push(Item::new(old.name.as_str(), Action::Kept, None));
            }
        }
        // Access rules are judged on the tables after every change.
        for (name, def) in &running {
            let file = self.table_file(name);
            for p in crate::tables::rules::check(def, &running) {
                self.problem(&file, p.pointer, p.message);
            }
        }
        self.report.tables.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(running)
    }

    fn table_file(&self, name: &str) -> String {
        self.project
            .tables
            .iter()
            .find(|(_, d)| d.name.as_str() == name)
            .map(|(f, _)| f.clone())
            .unwrap_or_else(|| format!("(table {name} on the instance)"))
    }

    async fn create_table(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        file: &str,
        mut def: TableDef,
        running: &mut Tables,
    ) -> Result<(), sqlx::Error> {
        // The file's ids are kept, so the next export writes the same bytes.
        let template = def.clone();
        let mut problems = def.assign_ids(Some(&template), store::new_id);
        if def.id.is_empty() {
            def.id = store::new_id("t");
        } else if !is_id(&def.id, 't') {
            problems.push(crate::base::Problem::new(
                "/id",
                format!("`{}` is not a table id (t_ and 12 hex digits)", def.id),
            ));
        }
        problems.extend(def.check(running));
        if running.contains_key(def.name.as_str()) {
            problems.push(crate::base::Problem::new(
                "/name",
                format!("a table named `{}` already exists", def.name),
            ));
        }
        if !problems.is_empty() {
            return self.table_error(file, TableError::Invalid(problems));
        }
        let plan = ddl::plan_create(&def, running);
        exec(tx, SAVEPOINT).await?;
        let result = async {
            store::apply(tx, &plan).await?;
            store::insert_def(tx, &def).await?;
            store::record(tx, &def.id, self.user_id, &plan).await
        }
        .await;
        end_step(tx, &result).await?;
        if let Err(e) = result {
            return self.table_error(file, e);
        }
        let mut item = Item::new(def.name.as_str(), Action::Create, Some(file));
        item.details = steps(&plan);
        self.report.tables.push(item);
        running.insert(def.name.to_string(), def);
        Ok(())
    }

    async fn change_table(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        file: &str,
        old: &TableDef,
        new: TableDef,
        running: &mut Tables,
    ) -> Result<(), sqlx::Error> {
        let mut others = running.clone();
        others.remove(old.name.as_str());
        let (new, plan) = match prepare_change(old, new, &others) {
            Ok(done) => done,
            Err(e) => return self.table_error(file, e),
        };
        if &new == old {
            self.report
                .tables
                .push(Item::new(new.name.as_str(), Action::Unchanged, Some(file)));
            return Ok(());
        }
        let dropped: Vec<String> = plan
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::DropField { field } => Some(format!("`{field}`")),
                _ => None,
            })
            .collect();
        if !dropped.is_empty() && !self.opts.allow_drop {
            self.problem(
                file,
                "/fields",
                format!(
                    "the file no longer has field(s) {} of table `{}`: applying drops them with their data (allow it with --allow-drop)",
                    dropped.join(", "),
                    old.name
                ),
            );
            return Ok(());
        }
        let referenced = referencing_fields(&others, old);
        if new.name != old.name && !referenced.is_empty() {
            self.problem(
                file,
                "/name",
                format!(
                    "table `{}` cannot be renamed while {} reference it",
                    old.name,
                    referenced.join(", ")
                ),
            );
            return Ok(());
        }
        exec(tx, SAVEPOINT).await?;
        let result = async {
            store::apply(tx, &plan).await?;
            store::update_def(tx, &new).await?;
            store::record(tx, &new.id, self.user_id, &plan).await
        }
        .await;
        end_step(tx, &result).await?;
        if let Err(e) = result {
            return self.table_error(file, e);
        }
        let mut item = Item::new(new.name.as_str(), Action::Change, Some(file));
        item.details = steps(&plan);
        if item.details.is_empty() {
            item.details
                .push("definition only (labels, rules or settings)".into());
        }
        self.report.tables.push(item);
        running.remove(old.name.as_str());
        running.insert(new.name.to_string(), new);
        Ok(())
    }

    async fn drop_table(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        old: &TableDef,
        running: &mut Tables,
    ) -> Result<(), sqlx::Error> {
        let label = format!("(table {} on the instance)", old.name);
        let mut others = running.clone();
        others.remove(old.name.as_str());
        let referenced = referencing_fields(&others, old);
        if !referenced.is_empty() {
            self.problem(
                &label,
                "",
                format!(
                    "dropping table `{}` is refused: {} reference it",
                    old.name,
                    referenced.join(", ")
                ),
            );
            return Ok(());
        }
        let plan = ddl::plan_drop(old);
        exec(tx, SAVEPOINT).await?;
        let result = async {
            store::apply(tx, &plan).await?;
            store::delete_def(tx, &old.id).await?;
            store::record(tx, &old.id, self.user_id, &plan).await
        }
        .await;
        end_step(tx, &result).await?;
        if let Err(e) = result {
            return self.table_error(&label, e);
        }
        let mut item = Item::new(old.name.as_str(), Action::Drop, None);
        item.details = steps(&plan);
        self.report.tables.push(item);
        running.remove(old.name.as_str());
        Ok(())
    }

    async fn groups(&mut self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        let current = groups::all_on(tx).await?;
        for (file, def) in &self.project.groups {
            let existing = current.iter().find(|g| g.def.name == def.name);
            let action = match existing {
                Some(g) if &g.def == def => {
                    self.report
                        .groups
                        .push(Item::new(&def.name, Action::Unchanged, Some(file)));
                    continue;
                }
                Some(_) => Action::Change,
                None => Action::Create,
            };
            exec(tx, SAVEPOINT).await?;
            let result = if action == Action::Create {
                groups::insert_in(tx, def).await.map(|_| ())
            } else {
                groups::update_in(tx, def, None).await.map(|_| ())
            };
            end_step(tx, &result).await?;
            match result {
                Ok(()) => self
                    .report
                    .groups
                    .push(Item::new(&def.name, action, Some(file))),
                Err(GroupError::Db(e)) => return Err(e),
                Err(GroupError::Invalid(ps)) => {
                    for p in ps {
                        self.problem(file, p.pointer, p.message);
                    }
                }
                Err(e) => self.problem(file, "", e.to_string()),
            }
        }
        Ok(())
    }

    /// Groups on the instance that the files do not have: deleted when pruning (after the
    /// flows, so the flows that used them are gone or moved), else kept.
    async fn prune_groups(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(), sqlx::Error> {
        let current = groups::all_on(tx).await?;
        for g in current {
            let name = g.def.name;
            if self.project.groups.iter().any(|(_, d)| d.name == name) {
                continue;
            }
            if !self.opts.prune || name == groups::DEFAULT_GROUP {
                self.report
                    .groups
                    .push(Item::new(&name, Action::Kept, None));
                continue;
            }
            exec(tx, SAVEPOINT).await?;
            let result = groups::delete_in(tx, &name, None).await;
            end_step(tx, &result).await?;
            match result {
                Ok(()) => self
                    .report
                    .groups
                    .push(Item::new(&name, Action::Delete, None)),
                Err(GroupError::Db(e)) => return Err(e),
                Err(e) => self.problem(
                    &format!("(API group {name} on the instance)"),
                    "",
                    e.to_string(),
                ),
            }
        }
        self.report.groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(())
    }

    async fn stored_flows(tx: &mut Transaction<'_, Postgres>) -> Result<Vec<Stored>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT f.id, f.name, f.document, v.rev AS published_rev, v.document AS published \
             FROM sluice.flows f LEFT JOIN sluice.flow_versions v \
             ON v.flow_id = f.id AND v.version = f.published_version ORDER BY f.name FOR UPDATE OF f",
        )
        .fetch_all(&mut **tx)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Stored {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    draft: r.try_get::<sqlx::types::Json<Value>, _>("document")?.0,
                    published_rev: r.try_get("published_rev")?,
                    published: r
                        .try_get::<Option<sqlx::types::Json<Value>>, _>("published")?
                        .map(|j| j.0),
                })
            })
            .collect()
    }

    /// Saves, publishes and prunes flows; returns the id of every flow there is after the
    /// apply, by name.
    async fn flows(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        tables: &Tables,
    ) -> Result<BTreeMap<String, i64>, sqlx::Error> {
        let stored = Self::stored_flows(tx).await?;
        let files = &self.project.flows;
        // What is served after the apply: the files' documents that are published, and the
        // published versions of every other flow that stays.
        let mut served: Vec<(String, String, &Value)> = Vec::new();
        let mut to_publish = Vec::new();
        for f in files {
            let rev = canonical::rev(&f.doc);
            let current = stored.iter().find(|s| s.name == f.name);
            let publish =
                self.opts.publish && current.and_then(|s| s.published_rev.as_deref()) != Some(&rev);
            if publish {
                to_publish.push(f.name.clone());
                served.push((f.name.clone(), f.file.clone(), &f.doc));
            } else if let Some(doc) = current.and_then(|s| s.published.as_ref()) {
                served.push((f.name.clone(), f.file.clone(), doc));
            }
        }
        for s in &stored {
            let in_files = files.iter().any(|f| f.name == s.name);
            if let (false, false, Some(doc)) = (in_files, self.opts.prune, &s.published) {
                served.push((
                    s.name.clone(),
                    format!("(flow {} on the instance)", s.name),
                    doc,
                ));
            }
        }
        let catalog = catalog_after(tables, served.iter().map(|(_, _, d)| *d));
        for (name, file, doc) in &served {
            if let Err(diags) = crate::nodes::compile(doc, Some(&catalog)) {
                let republished = to_publish.contains(name);
                for d in diags {
                    let message = if republished {
                        d.message.clone()
                    } else {
                        format!(
                            "the published version of flow `{name}` would break: {} (publish the new version with --publish, or change it too)",
                            d.message
                        )
                    };
                    self.problem(file, d.pointer.clone(), message);
                }
            }
        }
        // The drafts of the files must hold too (functions they call may be drafts of the
        // files themselves).
        let draft_catalog = catalog_after(
            tables,
            served
                .iter()
                .map(|(_, _, d)| *d)
                .chain(files.iter().map(|f| &f.doc)),
        );
        for f in files.iter().filter(|f| !to_publish.contains(&f.name)) {
            if let Err(diags) = crate::nodes::compile(&f.doc, Some(&draft_catalog)) {
                for d in diags {
                    self.problem(&f.file, d.pointer.clone(), d.message.clone());
                }
            }
        }
        // Drafts.
        let mut ids = BTreeMap::new();
        for f in files {
            let rev = canonical::rev(&f.doc);
            let current = stored.iter().find(|s| s.name == f.name);
            let mut item = match current {
                Some(s)
                    if canonical::to_canonical_string(&s.draft)
                        == canonical::to_canonical_string(&f.doc) =>
                {
                    Item::new(&f.name, Action::Unchanged, Some(&f.file))
                }
                Some(s) => {
                    crate::catalog::flows::replace_draft_in(tx, s.id, &f.doc, &rev)
                        .await
                        .map_err(catalog_db)?;
                    Item::new(&f.name, Action::Change, Some(&f.file))
                }
                None => {
                    exec(tx, SAVEPOINT).await?;
                    let result = crate::catalog::flows::insert_in(tx, &f.name, &f.doc, &rev).await;
                    end_step(tx, &result).await?;
                    match result {
                        Ok(record) => {
                            ids.insert(f.name.clone(), record.id);
                            Item::new(&f.name, Action::Create, Some(&f.file))
                        }
                        Err(e) => {
                            self.problem(&f.file, "", e.to_string());
                            continue;
                        }
                    }
                }
            };
            if let Some(s) = current {
                ids.insert(f.name.clone(), s.id);
            }
            item.publish = to_publish.contains(&f.name);
            self.report.flows.push(item);
        }
        for s in &stored {
            if files.iter().any(|f| f.name == s.name) {
                continue;
            }
            if self.opts.prune {
                sqlx::query("DELETE FROM sluice.flows WHERE id = $1")
                    .bind(s.id)
                    .execute(&mut **tx)
                    .await?;
                self.report
                    .flows
                    .push(Item::new(&s.name, Action::Delete, None));
            } else {
                ids.insert(s.name.clone(), s.id);
                self.report
                    .flows
                    .push(Item::new(&s.name, Action::Kept, None));
            }
        }
        if !self.report.problems.is_empty() {
            self.report.flows.sort_by(|a, b| a.name.cmp(&b.name));
            return Ok(ids);
        }
        // Publish: the routes of the flows published here are cleared first, so two of them
        // may trade routes; the unique route key refuses any other collision.
        let republished: Vec<i64> = to_publish
            .iter()
            .filter_map(|n| ids.get(n).copied())
            .collect();
        sqlx::query("UPDATE sluice.flows SET published_route = NULL WHERE id = ANY($1)")
            .bind(&republished)
            .execute(&mut **tx)
            .await?;
        for f in files.iter().filter(|f| to_publish.contains(&f.name)) {
            let Some(&id) = ids.get(&f.name) else {
                continue;
            };
            let plan = match crate::nodes::compile(&f.doc, Some(&catalog)) {
                Ok(p) => p,
                Err(_) => continue,
            };
            let rev = canonical::rev(&f.doc);
            exec(tx, SAVEPOINT).await?;
            let result =
                crate::serving::publish_in(tx, id, &rev, &plan, self.user_id, Some("sluice apply"))
                    .await;
            end_step(tx, &result).await?;
            if let Err(e) = result {
                match e {
                    crate::catalog::CatalogError::Db(e) => return Err(e),
                    other => self.problem(&f.file, "", other.to_string()),
                }
            }
        }
        self.report.flows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ids)
    }

    /// Stores the tests files with their flows; tests of flows that have no tests file are
    /// kept, or deleted when pruning.
    async fn tests(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        ids: &BTreeMap<String, i64>,
    ) -> Result<(), sqlx::Error> {
        use crate::catalog::flow_tests as store;
        let current = store::all(tx).await?;
        for (file, t) in &self.project.tests {
            let Some(&id) = ids.get(&t.flow) else {
                self.problem(
                    file,
                    "/flow",
                    format!(
                        "there is no flow `{}` in the files or on this instance",
                        t.flow
                    ),
                );
                continue;
            };
            let stored = current
                .iter()
                .find(|(cid, _, _)| *cid == id)
                .map(|(_, name, doc)| {
                    serde_json::from_value::<super::flow_tests::TestsFile>(doc.clone()).map(
                        |mut f| {
                            f.flow = name.clone();
                            f
                        },
                    )
                });
            let action = match stored {
                Some(Ok(f)) if &f == t => Action::Unchanged,
                Some(_) => Action::Change,
                None => Action::Create,
            };
            if action != Action::Unchanged {
                store::put(tx, id, &serde_json::to_value(t).unwrap_or_default()).await?;
            }
            self.report
                .tests
                .push(Item::new(&t.flow, action, Some(file)));
        }
        for (id, name, _) in &current {
            if self.project.tests.iter().any(|(_, t)| &t.flow == name) {
                continue;
            }
            let action = if self.opts.prune {
                store::delete(tx, *id).await?;
                Action::Delete
            } else {
                Action::Kept
            };
            self.report.tests.push(Item::new(name, action, None));
        }
        self.report.tests.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(())
    }

    async fn env(&mut self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        let Some(env) = &self.project.env else {
            return Ok(());
        };
        let current: Vec<(String, String, bool)> =
            sqlx::query_as("SELECT name, value, secret FROM sluice.env ORDER BY name")
                .fetch_all(&mut **tx)
                .await?;
        let plan = &mut self.report.env;
        for (name, value) in &env.values {
            match current.iter().find(|(n, _, _)| n == name) {
                None => {
                    sqlx::query(
                        "INSERT INTO sluice.env (name, value, secret) VALUES ($1, $2, false)",
                    )
                    .bind(name)
                    .bind(value)
                    .execute(&mut **tx)
                    .await?;
                    plan.added.push(name.clone());
                }
                Some((_, v, secret)) if *secret || v != value => plan.differs.push(name.clone()),
                Some(_) => {}
            }
        }
        for name in &env.secrets {
            if !current.iter().any(|(n, _, _)| n == name) {
                plan.missing_secrets.push(name.clone());
            }
        }
        plan.not_in_files = current
            .iter()
            .map(|(n, _, _)| n)
            .filter(|n| !env.values.contains_key(*n) && !env.secrets.contains(*n))
            .cloned()
            .collect();
        Ok(())
    }
}

fn catalog_db(e: crate::catalog::CatalogError) -> sqlx::Error {
    match e {
        crate::catalog::CatalogError::Db(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// The steps of a table plan, as one line each.
fn steps(plan: &Plan) -> Vec<String> {
    plan.steps.iter().map(|s| s.summary.clone()).collect()
}

/// What flows are compiled against after the apply: the tables, and the functions and job
/// flows among the documents that are served.
fn catalog_after<'a>(tables: &Tables, served: impl Iterator<Item = &'a Value>) -> Catalog {
    let mut functions = BTreeSet::new();
    let mut jobs = BTreeSet::new();
    for doc in served {
        let Ok(plan) = crate::nodes::compile(doc, None) else {
            continue;
        };
        match (&plan.endpoint, &plan.trigger) {
            (None, None) => {
                functions.insert(plan.name.clone());
            }
            (None, Some(Trigger::Job)) => {
                jobs.insert(plan.name.clone());
            }
            _ => {}
        }
    }
    Catalog {
        tables: tables.clone(),
        functions,
        jobs,
    }
}
