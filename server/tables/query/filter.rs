//! Filter trees of the table-query layer and their rendering: `and`/`or` groups of conditions on
//! one table's columns, each value a parameter slot. Pure, like the rest of `query`.

use super::{FilterOp, Ident, Params, Slot};

/// A filter tree over columns of one table; each condition holds the slot of its value.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter<S> {
    And(Vec<Filter<S>>),
    Or(Vec<Filter<S>>),
    Cond(Cond<S>),
}

/// One condition: `column op value`. The slot of `in` is bound as an array of the column's
/// type (`$n::bigint[]`), of `contains`/`starts_with` as the LIKE pattern ([`like_pattern`]),
/// of `is_null` as a boolean.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond<S> {
    pub column: Ident,
    pub cast: &'static str,
    pub op: FilterOp,
    pub value: S,
}

/// A rendered filter node. `absent` is the SQL that is true when every condition below was
/// skipped; `None` when some condition is always there.
struct Rendered {
    sql: String,
    absent: Option<String>,
    kind: Group,
}

#[derive(Clone, Copy, PartialEq)]
enum Group {
    Cond,
    And,
    Or,
}

/// Renders a filter as a condition on row `t`, adding its slots to `params` in order.
///
/// A skipped condition ([`Slot::may_skip`]) is neutral in its group: `TRUE` in an `and`,
/// `FALSE` in an `or`, and a group whose conditions are all skipped is itself skipped. So a
/// statement built once serves every request; which conditions apply is decided by the values
/// (`$n IS NULL`). A written empty group is not skipped: `and` matches every row, `or` none.
pub fn render_filter<S: Slot + Clone>(f: &Filter<S>, params: &mut Params<S>) -> String {
    let r = render(f, params);
    match r.absent {
        Some(_) if r.kind != Group::And => in_group(&r, Group::And),
        _ => r.sql,
    }
}

fn render<S: Slot + Clone>(f: &Filter<S>, params: &mut Params<S>) -> Rendered {
    let (items, kind) = match f {
        Filter::And(items) => (items, Group::And),
        Filter::Or(items) => (items, Group::Or),
        Filter::Cond(c) => return condition(c, params),
    };
    if items.is_empty() {
        let sql = if kind == Group::And { "TRUE" } else { "FALSE" };
        return Rendered {
            sql: sql.into(),
            absent: None,
            kind,
        };
    }
    let mut parts = Vec::with_capacity(items.len());
    let mut absents = Some(Vec::new());
    for item in items {
        let r = render(item, params);
        parts.push(in_group(&r, kind));
        match (&mut absents, r.absent) {
            (Some(list), Some(a)) => list.push(a),
            _ => absents = None,
        }
    }
    let sep = if kind == Group::And { " AND " } else { " OR " };
    Rendered {
        sql: format!("({})", parts.join(sep)),
        absent: absents.map(|a| {
            if a.len() == 1 {
                a.concat()
            } else {
                format!("({})", a.join(" AND "))
            }
        }),
        kind,
    }
}

fn condition<S: Slot + Clone>(c: &Cond<S>, params: &mut Params<S>) -> Rendered {
    let col = format!("t.{}", c.column.quoted());
    let skip = c.value.may_skip();
    let json_list = c.value.json_list();
    let (p, sql) = match (c.op, c.value.known_flag()) {
        (FilterOp::IsNull, Some(true)) => (None, format!("{col} IS NULL")),
        (FilterOp::IsNull, Some(false)) => (None, format!("{col} IS NOT NULL")),
        (op, _) => {
            let p = params.add(c.value.clone(), &param_cast(op, c.cast, json_list));
            let sql = compare_sql(&col, op, &p, c.cast, json_list);
            (Some(p), sql)
        }
    };
    Rendered {
        sql,
        absent: p.filter(|_| skip).map(|p| format!("{p} IS NULL")),
        kind: Group::Cond,
    }
}

/// The type a condition's parameter is cast to: `is_null` a boolean, `in` an array of the
/// column's type (or JSON text of one, `json_list`), `contains`/`starts_with` the LIKE pattern
/// as text, the others the column's type.
pub fn param_cast(op: FilterOp, cast: &str, json_list: bool) -> String {
    match op {
        FilterOp::IsNull => "boolean".into(),
        FilterOp::In if json_list => "jsonb".into(),
        FilterOp::In => format!("{cast}[]"),
        FilterOp::Contains | FilterOp::StartsWith => "text".into(),
        _ => cast.into(),
    }
}

/// `col op p`, the one rendering of a condition whose value is the parameter `p` (already
/// written with [`param_cast`]'s cast), for `db.query` filters, the data API and access rules.
pub fn compare_sql(col: &str, op: FilterOp, p: &str, cast: &str, json_list: bool) -> String {
    match op {
        FilterOp::IsNull => format!("({col} IS NULL) = {p}"),
        FilterOp::In if json_list && cast == "jsonb" => {
            format!("{col} IN (SELECT value FROM jsonb_array_elements({p}))")
        }
        FilterOp::In if json_list => {
            format!("{col} IN (SELECT value::{cast} FROM jsonb_array_elements_text({p}))")
        }
        FilterOp::In => format!("{col} = ANY({p})"),
        FilterOp::Contains => format!("{col} ILIKE {p}"),
        FilterOp::StartsWith => format!("{col} LIKE {p}"),
        op => {
            let sym = match op {
                FilterOp::Eq => "=",
                // A field that is null differs from any value.
                FilterOp::Ne => "IS DISTINCT FROM",
                FilterOp::Lt => "<",
                FilterOp::Le => "<=",
                FilterOp::Gt => ">",
                _ => ">=",
            };
            format!("{col} {sym} {p}")
        }
    }
}

/// A filter node as a member of a group of `kind`: made neutral when it is skipped.
fn in_group(r: &Rendered, kind: Group) -> String {
    match (&r.absent, kind) {
        (None, _) => r.sql.clone(),
        // A group handles its own skipped members already when it is of the same kind.
        (Some(_), k) if k == r.kind => r.sql.clone(),
        (Some(a), Group::Or) => format!("(NOT {a} AND {})", r.sql),
        (Some(a), _) => format!("({a} OR {})", r.sql),
    }
}
