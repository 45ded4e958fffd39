//! Table changes end to end: check the new definition, plan it, refuse it when it would break a
//! published flow (unless forced, or the flows can be rewritten for renames), apply it with the
//! catalog update, the history and the republish of rewritten flows in one transaction. It sits
//! above `tables`, `nodes` and `serving` because a change of a table is a change of the flows
//! that use it. (Creating a table touches no flow: `tables::store::create`.)

use crate::tables::ddl::{self, Change, Plan};
use crate::tables::def::{DefProblem, TableDef, Tables};
use crate::tables::store::{self, StoredTable, TableError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};

/// A request to change a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    /// The whole new definition; fields keep their ids, new fields have none.
    pub table: TableDef,
    /// Names (current names) of fields whose drop the caller confirms.
    #[serde(default)]
    pub confirm_drop: Vec<String>,
    /// Apply even if published flows break.
    #[serde(default)]
    pub force: bool,
    /// Rewrite published flows that use a renamed table or field, in the same change.
    #[serde(default)]
    pub update_flows: bool,
}

/// A published flow that a change would break.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Break {
    pub flow_id: i64,
    pub flow: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub reason: String,
}

/// A public contract of an endpoint that a rewrite for renames changed: a property of its
/// input schema now has the field's new name (clients must send the new name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiChange {
    pub flow_id: i64,
    pub flow: String,
    /// Whether the change is to the draft only (the flow's published version is not affected
    /// or is rewritten separately).
    pub draft: bool,
    /// JSON pointer of the renamed property in the flow document.
    pub pointer: String,
    pub from: String,
    pub to: String,
}

/// What a change did (or would do, for a preview).
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub table: StoredTable,
    pub plan: Plan,
    /// Flows the change breaks (non-empty only when forced or previewed).
    pub breaks: Vec<Break>,
    /// Flows rewritten and republished for renames.
    pub updated_flows: Vec<String>,
    /// Drafts (unpublished flows, or drafts that differ from what is published) that the
    /// change breaks. They never block a change: nothing serves them, but their next publish
    /// would fail.
    pub draft_breaks: Vec<Break>,
    /// Drafts rewritten for renames (saved, not published).
    pub updated_drafts: Vec<String>,
    /// Input schema properties renamed with their field by `update_flows`: the public API of
    /// those endpoints changed.
    pub api_changes: Vec<ApiChange>,
    /// Every flow the change rewrote (or would rewrite): for renames, and generated CRUD flows
    /// nobody edited that follow the table's fields ([`crate::flow::generate::follow`]).
    pub rewritten: Rewritten,
    pub applied: bool,
}

/// The flows a table change rewrites, by what happens to them.
#[derive(Debug, Default, Serialize)]
pub struct Rewritten {
    /// Published flows rewritten and republished (their draft too).
    pub published: Vec<FlowRef>,
    /// Drafts rewritten and saved, not published.
    pub drafts: Vec<FlowRef>,
}

/// A flow named in an answer: its id (for a link) and name.
#[derive(Debug, Clone, Serialize)]
pub struct FlowRef {
    pub flow_id: i64,
    pub flow: String,
}

impl Rewritten {
    fn of(published: &[(i64, String, Value)], drafts: &[(i64, String, Value)]) -> Rewritten {
        let refs = |l: &[(i64, String, Value)]| {
            l.iter()
                .map(|(id, n, _)| FlowRef {
                    flow_id: *id,
                    flow: n.clone(),
                })
                .collect()
        };
        Rewritten {
            published: refs(published),
            drafts: refs(drafts),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("the change would break {} published flow(s)", .0.len())]
    Breaks(Vec<Break>),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
}

impl From<sqlx::Error> for ChangeError {
    fn from(e: sqlx::Error) -> ChangeError {
        ChangeError::Table(TableError::Db(e))
    }
}

/// Changes a table; with `apply == false` only previews (nothing is written).
pub async fn change(
    pool: &PgPool,
    name: &str,
    expected_version: Option<i32>,
    req: ChangeRequest,
    user_id: i64,
    apply: bool,
) -> Result<Outcome, ChangeError> {
    let mut tx = pool.begin().await?;
    store::lock(&mut tx).await?;
    let current = store::get_for_update(&mut tx, name).await?;
    match expected_version {
        Some(v) if v != current.version => {
            return Err(TableError::Stale {
                expected: v,
                current: current.version,
            }
            .into());
        }
        None if apply => return Err(TableError::VersionRequired.into()),
        _ => {}
    }
    let mut tables = store::all_in(&mut tx).await?;
    let old = current.def;
    tables.remove(old.name.as_str());
    let (new, plan) = prepare_change(&old, req.table, &tables)?;
    let dropped: Vec<&str> = plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::DropField { field } => Some(field.as_str()),
            _ => None,
        })
        .filter(|f| !req.confirm_drop.iter().any(|c| c == f))
        .collect();
    if apply && !dropped.is_empty() {
        let list: Vec<String> = dropped.iter().map(|f| format!("field `{f}`")).collect();
        return Err(TableError::NeedsConfirmation(list.join(", ")).into());
    }
    let referenced_by = referencing_fields(&tables, &old);
    if new.name != old.name && !referenced_by.is_empty() {
        return Err(TableError::Referenced {
            table: old.name.to_string(),
            by: referenced_by.join(", "),
        }
        .into());
    }

    tables.insert(new.name.to_string(), new.clone());
    let published = load_published(&mut tx).await?;
    // Drafts that are not what is published: unpublished flows and edited drafts.
    let drafts: Vec<(i64, String, Value)> = load_drafts(&mut tx)
        .await?
        .into_iter()
        .filter(|(id, _, doc)| !published.iter().any(|(p, _, d)| p == id && d == doc))
        .collect();
    let mut rewritten = Vec::new();
    let mut rewritten_drafts = Vec::new();
    let mut api_changes = Vec::new();
    if req.update_flows {
        for (draft, list) in [(false, &published), (true, &drafts)] {
            for (id, flow_name, doc) in list {
                let renamed = rewrite_for_renames(doc, &old, &new, &plan.changes);
                if &renamed != doc && crate::nodes::compile(&renamed, Some(&tables)).is_ok() {
                    api_changes.extend(input_renames(doc, &renamed).into_iter().map(
                        |(pointer, from, to)| ApiChange {
                            flow_id: *id,
                            flow: flow_name.clone(),
                            draft,
                            pointer,
                            from,
                            to,
                        },
                    ));
                    let target = if draft {
                        &mut rewritten_drafts
                    } else {
                        &mut rewritten
                    };
                    target.push((*id, flow_name.clone(), renamed));
                }
            }
        }
    }
    // Generated CRUD flows nobody edited follow the table's fields. Renames and drops change
    // what clients send, so those only with `update_flows`; added or changed fields always.
    let additive = plan.changes.iter().all(|c| {
        !matches!(
            c,
            Change::RenameField { .. } | Change::DropField { .. } | Change::RenameTable { .. }
        )
    });
    if req.update_flows || additive {
        let target = |t: &str| {
            tables
                .get(t)
                .map(|d| d.id_type)
                .unwrap_or(crate::tables::IdType::Bigint)
        };
        for (draft, list) in [(false, &published), (true, &drafts)] {
            for (id, flow_name, doc) in list {
                let Some(regenerated) = crate::flow::generate::follow(doc, &old, &new, target)
                else {
                    continue;
                };
                if crate::nodes::compile(&regenerated, Some(&tables)).is_err() {
                    continue;
                }
                let target = if draft {
                    &mut rewritten_drafts
                } else {
                    &mut rewritten
                };
                target.retain(|(rid, _, _)| rid != id);
                target.push((*id, flow_name.clone(), regenerated));
            }
        }
    }
    let drafts_after = with_rewrites(&drafts, &rewritten_drafts);
    let draft_breaks = impact(&old, &plan.changes, &tables, &drafts_after);
    let after = with_rewrites(&published, &rewritten);
    let breaks = impact(&old, &plan.changes, &tables, &after);
    if apply && !breaks.is_empty() && !req.force {
        return Err(ChangeError::Breaks(breaks));
    }
    if !apply {
        return Ok(Outcome {
            rewritten: Rewritten::of(&rewritten, &rewritten_drafts),
            table: StoredTable {
                def: new,
                version: current.version,
            },
            plan,
            breaks,
            updated_flows: rewritten.into_iter().map(|(_, n, _)| n).collect(),
            draft_breaks,
            updated_drafts: rewritten_drafts.into_iter().map(|(_, n, _)| n).collect(),
            api_changes,
            applied: false,
        });
    }
    store::apply(&mut tx, &plan).await?;
    let version = store::update_def(&mut tx, &new).await?;
    store::record(&mut tx, &new.id, user_id, &plan).await?;
    let summary = Rewritten::of(&rewritten, &rewritten_drafts);
    let mut updated_flows = Vec::new();
    let updated_ids: Vec<i64> = rewritten.iter().map(|(id, _, _)| *id).collect();
    for (id, flow_name, doc) in rewritten {
        republish(&mut tx, id, &doc, user_id).await?;
        updated_flows.push(flow_name);
    }
    // Republishing wrote the published document as the draft; put every draft that differed
    // back (rewritten when it was).
    let mut updated_drafts = Vec::new();
    for (id, flow_name, doc) in &drafts_after {
        let was_rewritten = rewritten_drafts.iter().any(|(rid, _, _)| rid == id);
        if was_rewritten || updated_ids.contains(id) {
            save_draft(&mut tx, *id, doc).await?;
        }
        if was_rewritten {
            updated_drafts.push(flow_name.clone());
        }
    }
    tx.commit().await?;
    Ok(Outcome {
        table: StoredTable { def: new, version },
        plan,
        breaks,
        updated_flows,
        draft_breaks,
        updated_drafts,
        api_changes,
        rewritten: summary,
        applied: true,
    })
}

/// Checks `new`, the next definition of table `old`, against the other tables (`others`, which
/// does not hold `old`) and plans the change: ids kept and renames followed, the name free,
/// fields and access rules valid, and the rules of other tables that read this one still
/// holding. Every problem at once, with pointers under `/table`.
pub(crate) fn prepare_change(
    old: &TableDef,
    mut new: TableDef,
    others: &Tables,
) -> Result<(TableDef, Plan), TableError> {
    let mut problems = new.assign_ids(Some(old), store::new_id);
    new.follow_renames(old);
    if new.name != old.name && others.contains_key(new.name.as_str()) {
        problems.push(DefProblem::new(
            "/table/name",
            format!("a table named `{}` already exists", new.name),
        ));
    }
    problems.extend(
        new.check(others)
            .into_iter()
            .chain(crate::tables::rules::check(&new, others))
            .map(|p| DefProblem::new(format!("/table{}", p.pointer), p.message)),
    );
    if problems.is_empty() {
        // Other tables' rules that read this one (`exists`) must still hold after the change.
        let mut after = others.clone();
        after.insert(new.name.to_string(), new.clone());
        problems.extend(
            crate::tables::rules::broken(&after)
                .into_iter()
                .filter(|(t, _)| t != new.name.as_str())
                .map(|(t, p)| {
                    DefProblem::new(
                        "/table",
                        format!(
                            "the access rules of table `{t}` read this table and would break ({}: {})",
                            p.pointer, p.message
                        ),
                    )
                }),
        );
    }
    if !problems.is_empty() {
        return Err(TableError::Invalid(problems));
    }
    let plan = ddl::plan_change(old, &new, others).map_err(|ps| {
        TableError::Invalid(
            ps.into_iter()
                .map(|p| DefProblem::new(format!("/table{}", p.pointer), p.message))
                .collect(),
        )
    })?;
    Ok((new, plan))
}

/// Drops a table. `confirm` must be the table's name.
pub async fn drop_table(
    pool: &PgPool,
    name: &str,
    confirm: Option<&str>,
    force: bool,
    user_id: i64,
) -> Result<Plan, ChangeError> {
    let mut tx = pool.begin().await?;
    store::lock(&mut tx).await?;
    let current = store::get_for_update(&mut tx, name).await?;
    if confirm != Some(name) {
        return Err(TableError::NeedsConfirmation(format!(
            "table `{name}` and all its rows (send confirm={name})"
        ))
        .into());
    }
    let mut tables = store::all_in(&mut tx).await?;
    tables.remove(name);
    let mut referenced_by = referencing_fields(&tables, &current.def);
    referenced_by.extend(
        crate::tables::rules::broken(&tables)
            .into_iter()
            .map(|(t, _)| format!("the access rules of `{t}`")),
    );
    if !referenced_by.is_empty() {
        return Err(TableError::Referenced {
            table: name.to_string(),
            by: referenced_by.join(", "),
        }
        .into());
    }
    let plan = ddl::plan_drop(&current.def);
    let published = load_published(&mut tx).await?;
    let breaks = impact(&current.def, &plan.changes, &tables, &published);
    if !breaks.is_empty() && !force {
        return Err(ChangeError::Breaks(breaks));
    }
    store::apply(&mut tx, &plan).await?;
    store::delete_def(&mut tx, &current.def.id).await?;
    store::record(&mut tx, &current.def.id, user_id, &plan).await?;
    tx.commit().await?;
    Ok(plan)
}

/// `table.field` of other tables that reference `def`.
pub(crate) fn referencing_fields(tables: &Tables, def: &TableDef) -> Vec<String> {
    tables
        .values()
        .filter(|t| t.id != def.id)
        .flat_map(|t| {
            t.fields
                .iter()
                .filter(|f| f.table.as_ref() == Some(&def.name))
                .map(move |f| format!("{}.{}", t.name, f.name))
        })
        .collect()
}

async fn load_published(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<Vec<(i64, String, Value)>, ChangeError> {
    let rows: Vec<(i64, String, sqlx::types::Json<Value>)> = sqlx::query_as(
        "SELECT f.id, f.name, v.document FROM sluice.flows f \
         JOIN sluice.flow_versions v ON v.flow_id = f.id AND v.version = f.published_version ORDER BY f.id",
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(id, n, d)| (id, n, d.0)).collect())
}

/// Every flow's draft (`sluice.flows.document`).
async fn load_drafts(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<Vec<(i64, String, Value)>, ChangeError> {
    let rows: Vec<(i64, String, sqlx::types::Json<Value>)> =
        sqlx::query_as("SELECT id, name, document FROM sluice.flows ORDER BY id")
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().map(|(id, n, d)| (id, n, d.0)).collect())
}

/// Writes a flow's draft with its rev, leaving what is published alone.
async fn save_draft(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    doc: &Value,
) -> Result<(), ChangeError> {
    sqlx::query("UPDATE sluice.flows SET document = $2, rev = $3 WHERE id = $1")
        .bind(id)
        .bind(sqlx::types::Json(doc))
        .bind(crate::flow::canonical::rev(doc))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn republish(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    doc: &Value,
    user_id: i64,
) -> Result<(), ChangeError> {
    Ok(crate::serving::republish_in(tx, id, doc, user_id).await?)
}

/// Nodes of a flow that name `table` and whose type follows renames of it (database nodes,
/// `auth.verify_password` reading accounts from it): `(node id, node, its as-name when it
/// holds rows)`.
fn db_nodes<'d>(doc: &'d Value, table: &str) -> Vec<(&'d str, &'d Value, Option<&'d str>)> {
    doc.get("nodes")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, n)| {
            renamer(n).is_some() && n.get("table").and_then(Value::as_str) == Some(table)
        })
        .map(|(id, n)| (id.as_str(), n, row_variable(n)))
        .collect()
}

/// The `as` of a node whose variable holds rows of its table (not `db.aggregate`'s, whose
/// names are its own), so that `<as>.<field>` reads a field.
fn row_variable(node: &Value) -> Option<&str> {
    let ty = node.get("type").and_then(Value::as_str)?;
    crate::nodes::lookup(ty)
        .filter(|t| t.options.binds_rows)
        .and(node.get("as").and_then(Value::as_str))
}

/// The rename step of a node's type, if it names a table.
fn renamer(node: &Value) -> Option<fn(&mut Value, &crate::flow::node::Renames<'_>)> {
    let ty = node.get("type").and_then(Value::as_str)?;
    crate::nodes::lookup(ty)?.options.rename
}

/// Every Rhai source in a node: `$rhai` values at any depth and a script's `code`.
fn rhai_sources(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(m) => {
            if let Some(Value::String(s)) = m.get("$rhai") {
                out.push(s.clone());
            }
            if m.get("type").and_then(Value::as_str) == Some("script")
                && let Some(Value::String(code)) = m.get("code")
            {
                out.push(code.clone());
            }
            m.values().for_each(|v| rhai_sources(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| rhai_sources(v, out)),
        _ => {}
    }
}

/// Whether `src` reads `var.field` (as a whole word on both sides).
fn reads(src: &str, var: &str, field: &str) -> bool {
    let pat = format!("{var}.{field}");
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    src.match_indices(&pat).any(|(i, _)| {
        let before = src[..i].chars().next_back();
        let after = src[i + pat.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

fn replace_reads(src: &str, var: &str, from: &str, to: &str) -> String {
    let pat = format!("{var}.{from}");
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(src.len());
    let mut rest = 0;
    for (i, _) in src.match_indices(&pat) {
        let before = src[..i].chars().next_back();
        let after = src[i + pat.len()..].chars().next();
        if i >= rest && !before.is_some_and(ident) && !after.is_some_and(ident) {
            out.push_str(&src[rest..i]);
            out.push_str(&format!("{var}.{to}"));
            rest = i + pat.len();
        }
    }
    out.push_str(&src[rest..]);
    out
}

/// Published flows that the change breaks: flows that no longer compile against the changed
/// tables, and flows that read a renamed, dropped or retyped field of a row they loaded
/// (`row.field` where `row` is the `as` of a database node on the table).
pub fn impact(
    old: &TableDef,
    changes: &[Change],
    tables_after: &Tables,
    published: &[(i64, String, Value)],
) -> Vec<Break> {
    let mut breaks = Vec::new();
    for (id, name, doc) in published {
        if let Err(diags) = crate::nodes::compile(doc, Some(tables_after)) {
            for d in diags {
                breaks.push(Break {
                    flow_id: *id,
                    flow: name.clone(),
                    node: d.node.clone(),
                    reason: d.message.clone(),
                });
            }
            continue;
        }
        for (node_id, node, _) in db_nodes(doc, old.name.as_str()) {
            if !patches_from_body(node) {
                continue;
            }
            for c in changes {
                let (field, what) = match c {
                    Change::RenameField { from, to } => (from, format!("renamed to `{to}`")),
                    Change::DropField { field } => (field, "dropped".to_string()),
                    _ => continue,
                };
                if body_property(doc, field.as_str()).is_some() {
                    breaks.push(Break {
                        flow_id: *id,
                        flow: name.clone(),
                        node: Some(node_id.to_string()),
                        reason: format!(
                            "the input schema accepts `{field}`, which `{node_id}` patches into `{}` by name, and `{field}` is {what}",
                            old.name
                        ),
                    });
                }
            }
        }
        for (node_id, _, bind) in db_nodes(doc, old.name.as_str()) {
            let Some(var) = bind else { continue };
            let all = doc
                .get("nodes")
                .and_then(Value::as_object)
                .into_iter()
                .flatten();
            for (reader, n) in all {
                let mut srcs = Vec::new();
                rhai_sources(n, &mut srcs);
                for c in changes {
                    let (field, what) = match c {
                        Change::RenameField { from, to } => (from, format!("renamed to `{to}`")),
                        Change::DropField { field } => (field, "dropped".to_string()),
                        Change::RetypeField { field, to, .. } => (
                            field,
                            format!(
                                "changed to {}",
                                serde_json::to_value(to).unwrap_or_default()
                            ),
                        ),
                        _ => continue,
                    };
                    if srcs.iter().any(|s| reads(s, var, field)) {
                        breaks.push(Break {
                            flow_id: *id,
                            flow: name.clone(),
                            node: Some(reader.clone()),
                            reason: format!("reads `{var}.{field}` (loaded by `{node_id}` from `{}`), and `{field}` is {what}", old.name),
                        });
                    }
                }
            }
        }
    }
    breaks
}

/// A copy of a flow document with a renamed table and renamed fields followed: table names and
/// column keys of database nodes on the table, and `row.field` reads of rows they loaded.
pub fn rewrite_for_renames(
    doc: &Value,
    old: &TableDef,
    new: &TableDef,
    changes: &[Change],
) -> Value {
    let renames: Vec<(&str, &str)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::RenameField { from, to } => Some((from.as_str(), to.as_str())),
            _ => None,
        })
        .collect();
    if renames.is_empty() && old.name == new.name {
        return doc.clone();
    }
    let mut out = doc.clone();
    let vars: Vec<String> = db_nodes(doc, old.name.as_str())
        .iter()
        .filter_map(|(_, _, b)| b.map(str::to_string))
        .collect();
    let ids: Vec<String> = db_nodes(doc, old.name.as_str())
        .iter()
        .map(|(id, _, _)| id.to_string())
        .collect();
    follow_trigger_renames(&mut out, old, new, &renames);
    let Some(nodes) = out.get_mut("nodes").and_then(Value::as_object_mut) else {
        return out;
    };
    for (id, node) in nodes.iter_mut() {
        if ids.contains(id) {
            node["table"] = Value::String(new.name.to_string());
            if let Some(rename) = renamer(node) {
                rename(node, &renames);
            }
        }
        rewrite_sources(node, &vars, &renames);
    }
    rename_body_properties(doc, &mut out, old, &renames);
    out
}

/// A table trigger on the table follows its renames: the table, `columns` and the fields of
/// `when`.
fn follow_trigger_renames(
    doc: &mut Value,
    old: &TableDef,
    new: &TableDef,
    renames: &[(&str, &str)],
) {
    let Some(trigger) = doc.get_mut("trigger").filter(|t| {
        t.get("kind").and_then(Value::as_str) == Some("table")
            && t.get("table").and_then(Value::as_str) == Some(old.name.as_str())
    }) else {
        return;
    };
    trigger["table"] = Value::String(new.name.to_string());
    let rename = |v: &mut Value| {
        if let Some((_, to)) = renames.iter().find(|(from, _)| v.as_str() == Some(*from)) {
            *v = Value::String((*to).to_string());
        }
    };
    if let Some(cols) = trigger.get_mut("columns").and_then(Value::as_array_mut) {
        cols.iter_mut().for_each(rename);
    }
    fn fields(f: &mut Value, rename: &dyn Fn(&mut Value)) {
        for key in ["and", "or"] {
            if let Some(items) = f.get_mut(key).and_then(Value::as_array_mut) {
                items.iter_mut().for_each(|i| fields(i, rename));
            }
        }
        if let Some(field) = f.get_mut("field") {
            rename(field);
        }
    }
    if let Some(when) = trigger.get_mut("when") {
        fields(when, &rename);
    }
}

/// Whether a database node takes its `patch` from the request body as it is: the body's keys
/// are then column names, so a body property has to follow a rename of its field.
fn patches_from_body(node: &Value) -> bool {
    node.get("patch")
        .and_then(|p| p.get("$rhai"))
        .and_then(Value::as_str)
        .is_some_and(|s| s.trim() == "request.body")
}

/// The schema of property `name` of the flow's input body.
fn body_property<'d>(doc: &'d Value, name: &str) -> Option<&'d Value> {
    doc.pointer("/input/body/properties")?.get(name)
}

/// Renames input body properties with the fields they fill: where a node on the table patches
/// from `request.body`, or a node's value for the field reads `request.body.<field>`. The
/// property, its `required` entry and every `request.body.<field>` read (and the generated
/// `"<field>" in request.body` test) follow. A property whose new name is already taken is
/// left alone (the impact check then reports the flow).
fn rename_body_properties(doc: &Value, out: &mut Value, old: &TableDef, renames: &[(&str, &str)]) {
    let nodes = db_nodes(doc, old.name.as_str());
    for (from, to) in renames {
        let fills = nodes.iter().any(|(_, node, _)| {
            patches_from_body(node)
                || node
                    .get("values")
                    .and_then(|v| v.get(*from))
                    .is_some_and(|v| {
                        let mut srcs = Vec::new();
                        rhai_sources(v, &mut srcs);
                        srcs.iter().any(|s| reads(s, "request.body", from))
                    })
        });
        if !fills || body_property(out, from).is_none() || body_property(out, to).is_some() {
            continue;
        }
        if let Some(props) = out
            .pointer_mut("/input/body/properties")
            .and_then(Value::as_object_mut)
            && let Some(schema) = props.remove(*from)
        {
            props.insert(to.to_string(), schema);
        }
        for name in out
            .pointer_mut("/input/body/required")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if name == *from {
                *name = Value::String(to.to_string());
            }
        }
        let test_from = format!("\"{from}\" in request.body");
        let test_to = format!("\"{to}\" in request.body");
        if let Some(nodes) = out.get_mut("nodes") {
            map_sources(nodes, &|s: &str| {
                replace_reads(s, "request.body", from, to).replace(&test_from, &test_to)
            });
        }
    }
}

/// Applies `fix` to every Rhai source under `v` (`$rhai` values and scripts' `code`).
fn map_sources(v: &mut Value, fix: &impl Fn(&str) -> String) {
    match v {
        Value::Object(m) => {
            let is_script = m.get("type").and_then(Value::as_str) == Some("script");
            for (k, child) in m.iter_mut() {
                match child {
                    Value::String(s) if k == "$rhai" || (is_script && k == "code") => *s = fix(s),
                    other => map_sources(other, fix),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| map_sources(x, fix)),
        _ => {}
    }
}

/// The input body properties `after` names differently from `before`:
/// `(pointer in after, old name, new name)`.
fn input_renames(before: &Value, after: &Value) -> Vec<(String, String, String)> {
    let props = |d: &Value| -> Vec<String> {
        d.pointer("/input/body/properties")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (was, now) = (props(before), props(after));
    let gone: Vec<&String> = was.iter().filter(|p| !now.contains(p)).collect();
    let added: Vec<&String> = now.iter().filter(|p| !was.contains(p)).collect();
    gone.into_iter()
        .zip(added)
        .map(|(from, to)| {
            (
                format!("/input/body/properties/{to}"),
                from.clone(),
                to.clone(),
            )
        })
        .collect()
}

fn rewrite_sources(v: &mut Value, vars: &[String], renames: &[(&str, &str)]) {
    let fix = |s: &str| {
        let mut s = s.to_string();
        for var in vars {
            for (from, to) in renames {
                s = replace_reads(&s, var, from, to);
            }
        }
        s
    };
    match v {
        Value::Object(m) => {
            let is_script = m.get("type").and_then(Value::as_str) == Some("script");
            for (k, child) in m.iter_mut() {
                match child {
                    Value::String(s) if k == "$rhai" || (is_script && k == "code") => *s = fix(s),
                    other => rewrite_sources(other, vars, renames),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_sources(x, vars, renames)),
        _ => {}
    }
}

/// Flow documents `(id, name, document)` with the rewritten ones in place of their originals.
fn with_rewrites(
    docs: &[(i64, String, Value)],
    rewritten: &[(i64, String, Value)],
) -> Vec<(i64, String, Value)> {
    docs.iter()
        .map(|(id, n, doc)| {
            let doc = rewritten
                .iter()
                .find(|(rid, _, _)| rid == id)
                .map_or(doc, |(_, _, d)| d);
            (*id, n.clone(), doc.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_trigger_follows_the_renames_of_its_table() {
        use serde_json::json;
        let old: TableDef =
            serde_json::from_value(json!({"id": "t_000000000001", "name": "orders",
            "events": true, "fields": [{"id": "f_000000000001", "name": "state", "type": "text"}]}))
            .expect("def");
        let mut new = old.clone();
        new.name = serde_json::from_value(json!("purchases")).expect("name");
        let doc = json!({"trigger": {"kind": "table", "table": "orders", "on": ["update"],
            "columns": ["state"], "when": {"or": [{"field": "state", "op": "eq", "value": "paid"}]}},
            "nodes": {}});
        let changes = [Change::RenameField {
            from: "state".into(),
            to: "status".into(),
        }];
        let out = rewrite_for_renames(&doc, &old, &new, &changes);
        assert_eq!(out["trigger"]["table"], "purchases");
        assert_eq!(out["trigger"]["columns"], json!(["status"]));
        assert_eq!(out["trigger"]["when"]["or"][0]["field"], "status");
        let other =
            json!({"trigger": {"kind": "table", "table": "tags", "on": ["insert"]}, "nodes": {}});
        assert_eq!(rewrite_for_renames(&other, &old, &new, &changes), other);
    }

    #[test]
    fn an_aggregate_follows_renames_of_its_columns_but_not_reads_of_its_own_names() {
        use serde_json::json;
        let old: TableDef = serde_json::from_value(json!({"name": "reviews", "fields": [
            {"id": "f_000000000001", "name": "count", "type": "integer"},
            {"id": "f_000000000002", "name": "book", "type": "integer"}]}))
        .expect("definition");
        let mut new = old.clone();
        new.fields[0].name = crate::tables::Ident::parse("copies").expect("name");
        let doc = json!({"nodes": {
            "a": {"type": "db.aggregate", "table": "reviews", "as": "stats",
                  "aggregates": {"count": {"fn": "sum", "column": "count"}}},
            "r": {"type": "respond", "body": {"$rhai": "stats.count"}}
        }});
        let changes = [Change::RenameField {
            from: "count".into(),
            to: "copies".into(),
        }];
        let out = rewrite_for_renames(&doc, &old, &new, &changes);
        assert_eq!(
            out["nodes"]["a"]["aggregates"],
            json!({"count": {"fn": "sum", "column": "copies"}})
        );
        assert_eq!(out["nodes"]["r"]["body"]["$rhai"], "stats.count");
    }

    #[test]
    fn renames_follow_filters_selections_includes_and_conflict_targets() {
        use serde_json::json;
        let old: TableDef = serde_json::from_value(json!({"name": "todos", "fields": [
            {"id": "f_000000000001", "name": "note", "type": "text"},
            {"id": "f_000000000002", "name": "title", "type": "text", "unique": true}]}))
        .expect("definition");
        let mut new = old.clone();
        new.fields[0].name = crate::tables::Ident::parse("remark").expect("name");
        let doc = json!({"nodes": {
            "q": {"type": "db.query", "table": "todos", "select": ["note", "title"],
                  "filter": {"or": [{"field": "note", "op": "eq", "value": 1},
                                    {"and": [{"field": "note", "op": "is_null", "value": true}]}]}},
            "u": {"type": "db.upsert", "table": "todos", "on": ["note"], "values": {"note": 1}},
            "other": {"type": "db.query", "table": "tags", "select": ["note"]}
        }});
        let changes = [Change::RenameField {
            from: "note".into(),
            to: "remark".into(),
        }];
        let out = rewrite_for_renames(&doc, &old, &new, &changes);
        assert_eq!(out["nodes"]["q"]["select"], json!(["remark", "title"]));
        assert_eq!(out["nodes"]["q"]["filter"]["or"][0]["field"], "remark");
        assert_eq!(
            out["nodes"]["q"]["filter"]["or"][1]["and"][0]["field"],
            "remark"
        );
        assert_eq!(out["nodes"]["u"]["on"], json!(["remark"]));
        assert_eq!(out["nodes"]["u"]["values"], json!({"remark": 1}));
        assert_eq!(out["nodes"]["other"]["select"], json!(["note"]));
    }

    #[test]
    fn renames_follow_the_account_fields_and_reads_of_verify_password() {
        use serde_json::json;
        let old: TableDef = serde_json::from_value(json!({"name": "users", "fields": [
            {"id": "f_000000000001", "name": "email", "type": "email", "unique": true},
            {"id": "f_000000000002", "name": "password", "type": "password"},
            {"id": "f_000000000003", "name": "role", "type": "text"}]}))
        .expect("definition");
        let mut new = old.clone();
        new.fields[0].name = crate::tables::Ident::parse("login").expect("name");
        new.fields[2].name = crate::tables::Ident::parse("kind").expect("name");
        let doc = json!({"nodes": {
            "check": {"type": "auth.verify_password", "as": "user", "table": "users",
                      "email_field": "email", "email": "a@b.c", "password": "x",
                      "next": {"valid": "r"}},
            "r": {"type": "respond", "body": {"$rhai": "user.role"}}
        }});
        let changes = [
            Change::RenameField {
                from: "email".into(),
                to: "login".into(),
            },
            Change::RenameField {
                from: "role".into(),
                to: "kind".into(),
            },
        ];
        let out = rewrite_for_renames(&doc, &old, &new, &changes);
        assert_eq!(out["nodes"]["check"]["email_field"], "login");
        assert_eq!(out["nodes"]["r"]["body"]["$rhai"], "user.kind");
    }

    #[test]
    fn reads_are_found_on_word_boundaries_only() {
        assert!(reads("todo.title + 1", "todo", "title"));
        assert!(!reads("todo.titles", "todo", "title"));
        assert!(!reads("mytodo.title", "todo", "title"));
        assert_eq!(
            replace_reads(
                "todo.title == mytodo.title || todo.titles",
                "todo",
                "title",
                "name"
            ),
            "todo.name == mytodo.title || todo.titles"
        );
    }
}
