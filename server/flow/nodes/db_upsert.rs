//! `db.upsert`: inserts a row, or updates the row that already has the same values in the
//! `on` columns (`INSERT … ON CONFLICT (on) DO UPDATE`). `on` must be exactly the columns of a
//! unique field or unique index of the table, checked here. `ok` binds `as` to
//! `{"row": <the row>, "inserted": true|false}`; unwired `conflict` (another unique constraint
//! or a reference refused the row) is 409 `db.conflict`.

use super::{NodeCx, NodeType, Port};
use crate::flow::plan::Op;
use crate::tables::TableDef;
use crate::tables::def::SYSTEM_COLUMNS;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const TYPE: NodeType = NodeType {
    name: "db.upsert",
    ports: &[
        Port {
            name: "ok",
            required: true,
            binds: true,
        },
        Port {
            name: "conflict",
            required: false,
            binds: false,
        },
    ],
    binds: true,
    dynamic_ports: None,
    compile,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    table: String,
    values: BTreeMap<String, Value>,
    on: Vec<String>,
}

/// The column sets Postgres can use as the conflict target of an upsert on `def`: each unique
/// field and each unique index (the primary key `id` cannot be written, so it is not one).
pub fn unique_keys(def: &TableDef) -> Vec<BTreeSet<&str>> {
    def.fields
        .iter()
        .filter(|f| f.unique)
        .map(|f| BTreeSet::from([f.name.as_str()]))
        .chain(
            def.indexes
                .iter()
                .filter(|ix| ix.unique)
                .map(|ix| ix.fields.iter().map(|f| f.as_str()).collect()),
        )
        .collect()
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let (table, def) = cx.table(&cfg.table)?;
    let mut ok = true;
    for col in cfg
        .values
        .keys()
        .filter(|c| SYSTEM_COLUMNS.contains(&c.as_str()))
    {
        cx.problem(
            "flow.read_only_column",
            &format!("values/{col}"),
            format!("`{col}` is set by Sluice"),
        );
        ok = false;
    }
    if let Some(def) = &def {
        for f in def
            .must_be_given()
            .filter(|f| !cfg.values.contains_key(f.name.as_str()))
        {
            let msg = format!(
                "required column `{}` of table `{}` is not given (an upsert may insert)",
                f.name, def.name
            );
            cx.problem("flow.missing_column", "values", msg);
            ok = false;
        }
    }
    let mut on = Vec::new();
    for (i, name) in cfg.on.iter().enumerate() {
        let field = format!("on/{i}");
        let Some(column) = cx.column(def.as_ref(), name, &field) else {
            ok = false;
            continue;
        };
        if !cfg.values.contains_key(name) {
            cx.problem(
                "flow.missing_column",
                &field,
                format!("`{name}` is a conflict column, so `values` must give it"),
            );
            ok = false;
        }
        on.push(column);
    }
    if let Some(def) = &def
        && on.len() == cfg.on.len()
    {
        let wanted: BTreeSet<&str> = cfg.on.iter().map(String::as_str).collect();
        if !unique_keys(def).contains(&wanted) {
            let keys: Vec<String> = unique_keys(def)
                .iter()
                .map(|k| format!("[{}]", k.iter().copied().collect::<Vec<_>>().join(", ")))
                .collect();
            let known = if keys.is_empty() {
                "the table has no unique field or unique index".to_string()
            } else {
                format!("its unique keys are {}", keys.join(", "))
            };
            cx.problem(
                "flow.not_unique",
                "on",
                format!(
                    "no unique field or unique index of `{}` covers exactly [{}]; {known}",
                    def.name,
                    cfg.on.join(", ")
                ),
            );
            ok = false;
        }
    }
    let values = cx.column_values(def.as_ref(), &cfg.values, "values")?;
    ok.then(|| Op::DbUpsert {
        table,
        values,
        on,
        ok: cx.required("ok"),
        conflict: cx.port("conflict"),
    })
}
