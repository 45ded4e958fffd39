//! Aggregates of the table-query layer: `count`, `sum`, `avg`, `min` and `max` over the rows
//! of one table that match a filter (and an access rule), as one JSON object, or grouped by
//! columns as one JSON array of objects. Pure, like the rest of `query`.
//!
//! The JSON types are fixed by the statement, not by the reader: `count` is a bigint, `sum` of
//! an integer column a numeric without fraction (a JSON integer), `sum` of a decimal the
//! column's own digits, `avg` a numeric with its trailing zeros trimmed (exact, never a float),
//! `min`/`max` the column's own type. Postgres has no `min`/`max` of booleans or uuids: they
//! are `bool_and`/`bool_or`, and the uuid's text (whose order is the uuid's byte order).

use super::{Column, FieldType, Filter, Guard, Ident, Params, Slot, Statement, TableDef, capped};
use super::{from, render_filter, where_clause};

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl AggFn {
    /// Every function with its name in flow documents.
    pub const ALL: [(&'static str, AggFn); 5] = [
        ("count", AggFn::Count),
        ("sum", AggFn::Sum),
        ("avg", AggFn::Avg),
        ("min", AggFn::Min),
        ("max", AggFn::Max),
    ];

    pub fn parse(s: &str) -> Option<AggFn> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Whether the function applies to a column of this type: `sum` and `avg` to numbers,
    /// `min` and `max` to ordered types, `count` to any; never to password fields.
    pub fn fits(self, ty: FieldType) -> bool {
        match self {
            _ if ty == FieldType::Password => false,
            AggFn::Count => true,
            AggFn::Sum | AggFn::Avg => matches!(ty, FieldType::Integer | FieldType::Decimal),
            AggFn::Min | AggFn::Max => ty.is_ordered(),
        }
    }

    /// What the function needs, for messages.
    pub fn needs(self) -> &'static str {
        match self {
            AggFn::Count => "any column but a password field",
            AggFn::Sum | AggFn::Avg => "an integer or decimal column",
            AggFn::Min | AggFn::Max => "a column with an order (not json, not password)",
        }
    }
}

/// One aggregate: its output name, function and column (`None`: `count(*)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub name: Ident,
    pub func: AggFn,
    pub column: Option<Column>,
}

/// What an `ORDER BY` key of grouped aggregates names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKey {
    /// Group column `i`.
    Group(usize),
    /// Aggregate `i`.
    Aggregate(usize),
}

/// One `ORDER BY` key of grouped aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggOrder {
    pub key: AggKey,
    pub desc: bool,
}

/// Aggregates over the rows of one table. Built once; its values are all slots.
#[derive(Clone)]
pub struct AggregateQuery<'a, S> {
    pub def: &'a TableDef,
    /// Equality conditions (`column = value`; a NULL value matches nothing), before the filter.
    pub equal: Vec<(Column, S)>,
    pub filter: Option<&'a Filter<S>>,
    /// Group columns; empty: one object over every matching row.
    pub group_by: &'a [Column],
    pub aggregates: &'a [Aggregate],
    /// Only with `group_by`: order keys, then every group column not among them (ascending),
    /// so the order is total.
    pub order: &'a [AggOrder],
    /// Only with `group_by`: bound as `bigint`, the groups to return.
    pub limit: Option<S>,
    /// An access rule every aggregated row must satisfy.
    pub guard: Option<Guard<'a, S>>,
}

/// An aggregate whose function does not fit its column, or a query the builder cannot write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadAggregate(pub String);

/// The statement of an [`AggregateQuery`], sent only within the result cap ([`capped`]):
/// without groups `{"<name>": value, ...}` (one row even when no row matches: counts 0, the
/// others null), with groups `[{"<group column>": value, ..., "<name>": value, ...}, ...]`.
pub fn aggregate<S: Slot + Clone>(q: AggregateQuery<'_, S>) -> Result<Statement<S>, BadAggregate> {
    if q.aggregates.is_empty() && q.group_by.is_empty() {
        return Err(BadAggregate("nothing to aggregate".into()));
    }
    // jsonb_build_object takes at most 100 arguments.
    if q.aggregates.len() + q.group_by.len() > 50 {
        return Err(BadAggregate("at most 50 output names".into()));
    }
    let exprs = q
        .aggregates
        .iter()
        .map(expression)
        .collect::<Result<Vec<_>, _>>()?;
    let mut params = Params::default();
    let mut conds = Vec::new();
    for (c, v) in q.equal.iter().cloned() {
        let p = params.add(v, c.cast);
        conds.push(format!("t.{} = {p}", c.ident.quoted()));
    }
    if let Some(f) = q.filter {
        conds.push(render_filter(f, &mut params));
    }
    let pairs: Vec<String> = q
        .group_by
        .iter()
        .map(|c| format!("'{}', t.{}", c.ident, c.ident.quoted()))
        .chain(
            q.aggregates
                .iter()
                .zip(&exprs)
                .map(|(a, e)| format!("'{}', {e}", a.name)),
        )
        .collect();
    let object = format!("json_build_object({})", pairs.join(", "));
    let from = from(q.def);
    if q.group_by.is_empty() {
        if !q.order.is_empty() || q.limit.is_some() {
            return Err(BadAggregate("order and limit need group columns".into()));
        }
        // The rule's parameters come last.
        if let Some(g) = q.guard {
            conds.push(g(&mut params));
        }
        return Ok(params.statement(capped(&format!(
            "SELECT {object} FROM {from}{}",
            where_clause(&conds)
        ))));
    }
    let limit = match q.limit.clone() {
        Some(l) => format!(" LIMIT {}", params.add(l, "bigint")),
        None => String::new(),
    };
    // The rule's parameters come last (after the limit's).
    if let Some(g) = q.guard {
        conds.push(g(&mut params));
    }
    let mut keys = Vec::with_capacity(q.order.len() + q.group_by.len());
    for o in q.order {
        let sql = match o.key {
            AggKey::Group(i) => q.group_by.get(i).map(|c| format!("t.{}", c.ident.quoted())),
            AggKey::Aggregate(i) => exprs.get(i).cloned(),
        }
        .ok_or_else(|| BadAggregate("an order key names nothing".into()))?;
        keys.push(if o.desc { format!("{sql} DESC") } else { sql });
    }
    for (i, c) in q.group_by.iter().enumerate() {
        if !q.order.iter().any(|o| o.key == AggKey::Group(i)) {
            keys.push(format!("t.{}", c.ident.quoted()));
        }
    }
    let order = keys.join(", ");
    let groups: Vec<String> = q
        .group_by
        .iter()
        .map(|c| format!("t.{}", c.ident.quoted()))
        .collect();
    Ok(params.statement(capped(&format!(
        "SELECT coalesce(json_agg(s.r ORDER BY s.n), '[]'::json) FROM \
         (SELECT {object} AS r, row_number() OVER (ORDER BY {order}) AS n \
         FROM {from}{} GROUP BY {} ORDER BY {order}{limit}) AS s",
        where_clause(&conds),
        groups.join(", "),
    ))))
}

/// The SQL of one aggregate over row `t`.
fn expression(a: &Aggregate) -> Result<String, BadAggregate> {
    let Some(c) = &a.column else {
        return match a.func {
            AggFn::Count => Ok("count(*)".into()),
            f => Err(BadAggregate(format!(
                "`{}`: {} needs a column",
                a.name,
                f.name()
            ))),
        };
    };
    if !a.func.fits(c.ty) {
        return Err(BadAggregate(format!(
            "`{}`: {} needs {}; `{}` is {}",
            a.name,
            a.func.name(),
            a.func.needs(),
            c.ident,
            c.ty.name()
        )));
    }
    let col = format!("t.{}", c.ident.quoted());
    Ok(match (a.func, c.ty, c.cast) {
        (AggFn::Count, ..) => format!("count({col})"),
        (AggFn::Sum, ..) => format!("sum({col})"),
        // Exact, without the dozen trailing zeros Postgres' division leaves.
        (AggFn::Avg, ..) => format!("trim_scale(avg({col}))"),
        (AggFn::Min, FieldType::Boolean, _) => format!("bool_and({col})"),
        (AggFn::Max, FieldType::Boolean, _) => format!("bool_or({col})"),
        (f, _, "uuid") => format!("{}({col}::text)::uuid", f.name()),
        (f, ..) => format!("{}({col})", f.name()),
    })
}
