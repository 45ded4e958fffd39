//! Reading statements of the table-query layer: the data API's page (`select`, `count`, `get`)
//! and a node's query as one JSON value (`select_json`, with `include` and keyset pages over any
//! order). Pure.

use super::{
    Column, Filter, Guard, Ident, Params, Slot, Sort, Statement, TableDef, Tables, capped, column,
    from, guarded, id_condition, render_filter, row_json, where_clause,
};

/// A page of rows: filter, keyset cursor, order, limit and offset.
#[derive(Debug, Clone)]
pub struct Select<'a, S> {
    pub def: &'a TableDef,
    pub filter: Option<&'a Filter<S>>,
    pub sort: &'a Sort,
    /// The sort values (one per [`Sort::value_keys`]) and id of the row the page starts after.
    pub after: Option<(Vec<Option<S>>, S)>,
    /// Bound as `bigint`: the rows to fetch.
    pub limit: S,
    pub offset: Option<S>,
}

/// `SELECT <row JSON> AS row, <sort values as a JSON array of texts> AS sort_keys, id::text AS
/// id`, one result row per table row, so the caller can stop reading at its result cap and
/// build the next cursor from the last row's `sort_keys` and `id`.
pub fn select<S: Slot + Clone>(s: Select<'_, S>) -> Statement<S> {
    let mut params = Params::default();
    let mut conds = Vec::new();
    if let Some(f) = s.filter {
        conds.push(render_filter(f, &mut params));
    }
    if let Some((key, id)) = s.after {
        conds.push(s.sort.after(key, id, s.def.id_type.sql_type(), &mut params));
    }
    let limit = params.add(s.limit, "bigint");
    let offset = s
        .offset
        .map(|o| format!(" OFFSET {}", params.add(o, "bigint")))
        .unwrap_or_default();
    params.statement(format!(
        "SELECT {} AS row, {} AS sort_keys, t.\"id\"::text AS id FROM {}{} ORDER BY {} LIMIT {limit}{offset}",
        row_json(s.def, "t"),
        s.sort.key_values(),
        from(s.def),
        where_clause(&conds),
        s.sort.order_by(),
    ))
}

/// One `ORDER BY` key of a [`JsonSelect`].
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    pub column: Column,
    pub desc: bool,
}

/// The paging of a [`JsonSelect`].
#[derive(Debug, Clone, PartialEq)]
pub struct Paging<S> {
    /// The keys of the row to start after: one slot per order key, then the id. All of them
    /// SQL NULL is the first page.
    pub after: Option<Vec<S>>,
    /// Adds the number of matching rows as `total`.
    pub count: bool,
}

/// A query answered as one JSON value, as a flow node reads it: the rows as an array, or (with
/// `paging`) `{"rows", "more", "last"[, "total"]}` where `last` holds the keys of the page's
/// last row for the next cursor. Built once; its values are all slots.
#[derive(Clone)]
pub struct JsonSelect<'a, S> {
    pub def: &'a TableDef,
    pub tables: &'a Tables,
    /// Equality conditions (`column = value`; a NULL value matches nothing), before the filter.
    pub equal: Vec<(Column, S)>,
    pub filter: Option<&'a Filter<S>>,
    /// The columns to return; empty is every readable column.
    pub columns: &'a [Ident],
    /// Related rows to put into each row.
    pub include: &'a [Include],
    /// Order keys; `id` (ascending) always ends the order.
    pub order: &'a [OrderKey],
    pub limit: S,
    pub offset: S,
    pub paging: Option<Paging<S>>,
    /// An access rule every returned (and counted) row must satisfy.
    pub guard: Option<Guard<'a, S>>,
    /// The access rule an included row of a table must satisfy, rendered over the given alias
    /// (`None`: that table has none); an included row it refuses reads as null. Its
    /// parameters follow the guard's, in `include` order.
    pub include_guard: Option<IncludeGuard<'a, S>>,
}

/// The rule of an included table (its name) for an action (`view` for a referenced row, `list`
/// for rows that reference the row), over row `alias`, or `None` when it has none.
pub type IncludeGuard<'g, S> = &'g dyn Fn(&str, &str, &str, &mut Params<S>) -> Option<String>;

/// A reference that an [`Include`] cannot follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a reference of an existing table")]
pub struct NotAReference(pub String);

/// The statement of a [`JsonSelect`], sent only within the result cap ([`capped`]). The total
/// reuses the filter's parameters in a scalar subquery, so page and total come from one
/// snapshot in one round trip.
pub fn select_json<S: Slot + Clone>(q: JsonSelect<'_, S>) -> Result<Statement<S>, NotAReference> {
    let mut params = Params::default();
    let mut conds = Vec::new();
    for (c, v) in q.equal.iter().cloned() {
        let p = params.add(v, c.cast);
        conds.push(format!("t.{} = {p}", c.ident.quoted()));
    }
    if let Some(f) = q.filter {
        conds.push(render_filter(f, &mut params));
    }
    let from = from(q.def);
    let limit = params.add(q.limit.clone(), "bigint");
    let offset = params.add(q.offset.clone(), "bigint");

    let order = |alias: &str| {
        q.order
            .iter()
            .map(|o| {
                let dir = if o.desc { " DESC" } else { "" };
                format!("{alias}.{}{dir}", o.column.ident.quoted())
            })
            .chain(std::iter::once(format!("{alias}.\"id\"")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(paging) = q.paging.clone() else {
        // The rules' parameters come last (after limit and offset).
        if let Some(g) = q.guard {
            conds.push(g(&mut params));
        }
        let row = row_expr(&q, &mut params)?;
        let matching = where_clause(&conds);
        return Ok(params.statement(capped(&format!(
            "SELECT coalesce(json_agg({row} ORDER BY {}), '[]'::json) FROM \
             (SELECT * FROM {from}{matching} ORDER BY {} LIMIT {limit} OFFSET {offset}) AS s",
            order("s"),
            order("t"),
        ))));
    };
    let id = column(q.def, q.tables, "id").ok_or_else(|| NotAReference("id".into()))?;
    let keys: Vec<OrderKey> = q
        .order
        .iter()
        .cloned()
        .chain(std::iter::once(OrderKey {
            column: id,
            desc: false,
        }))
        .collect();
    let mut after = None;
    if let Some(values) = paging.after {
        let marks: Vec<String> = values
            .into_iter()
            .zip(&keys)
            .map(|(v, k)| params.add(v, k.column.cast))
            .collect();
        let last = marks.last().cloned().unwrap_or_default();
        after = Some(format!("({last} IS NULL OR {})", after_keys(&keys, &marks)));
    }
    // The rules' parameters come last (after the cursor's).
    if let Some(g) = q.guard {
        conds.push(g(&mut params));
    }
    let row = row_expr(&q, &mut params)?;
    let matching = where_clause(&conds);
    let mut scan = conds;
    scan.extend(after);
    let key_cols: Vec<String> = keys
        .iter()
        .map(|k| format!("s.{}::text", k.column.ident.quoted()))
        .collect();
    let total = if paging.count {
        format!(", 'total', (SELECT count(*) FROM {from}{matching})")
    } else {
        String::new()
    };
    Ok(params.statement(capped(&format!(
        "SELECT json_build_object(\
         'rows', coalesce(json_agg(p.r ORDER BY p.n) FILTER (WHERE p.n <= {limit}), '[]'::json), \
         'more', count(*) > {limit}, \
         'last', (json_agg(p.k ORDER BY p.n DESC) FILTER (WHERE p.n <= {limit})) -> 0{total}) \
         FROM (SELECT {row} AS r, json_build_array({}) AS k, row_number() OVER (ORDER BY {}) AS n \
         FROM (SELECT * FROM {from}{} ORDER BY {} LIMIT {limit} + 1 OFFSET {offset}) AS s) AS p",
        key_cols.join(", "),
        order("s"),
        where_clause(&scan),
        order("t"),
    ))))
}

/// The condition "after the cursor row" for `keys` (already `$n::type` placeholders in
/// `marks`), with Postgres' NULL placement: last when ascending, first when descending.
fn after_keys(keys: &[OrderKey], marks: &[String]) -> String {
    let col = |k: &OrderKey| format!("t.{}", k.column.ident.quoted());
    if keys.iter().all(|k| k.column.not_null && !k.desc) {
        let cols: Vec<String> = keys.iter().map(col).collect();
        return format!("({}) > ({})", cols.join(", "), marks.join(", "));
    }
    let mut alternatives = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let mut terms: Vec<String> = keys[..i]
            .iter()
            .zip(marks)
            .map(|(e, m)| {
                if e.column.not_null {
                    format!("{} = {m}", col(e))
                } else {
                    format!("{} IS NOT DISTINCT FROM {m}", col(e))
                }
            })
            .collect();
        let (c, m) = (col(k), &marks[i]);
        terms.push(match (k.desc, k.column.not_null) {
            (false, true) => format!("{c} > {m}"),
            (true, true) => format!("{c} < {m}"),
            (false, false) => format!("({c} > {m} OR ({m} IS NOT NULL AND {c} IS NULL))"),
            (true, false) => format!("({c} < {m} OR ({m} IS NULL AND {c} IS NOT NULL))"),
        });
        alternatives.push(if terms.len() == 1 {
            terms.concat()
        } else {
            format!("({})", terms.join(" AND "))
        });
    }
    format!("({})", alternatives.join(" OR "))
}

/// The JSON of one output row `s` of a [`JsonSelect`]: all readable columns or the chosen
/// ones, with its includes ([`row_with`]).
fn row_expr<S>(q: &JsonSelect<'_, S>, params: &mut Params<S>) -> Result<String, NotAReference> {
    let mut n = 0;
    let mut within = Within {
        tables: q.tables,
        guard: q.include_guard,
        params,
        next: &mut n,
    };
    row_with(&mut within, q.def, "s", q.columns, q.include)
}

/// Related rows put into each row a read returns (`include` of `db.query` and `db.get`).
#[derive(Debug, Clone, PartialEq)]
pub enum Include {
    /// Reference field `field`: the referenced row replaces the id (`null` when there is none,
    /// or when the referenced table's `view` rule refuses it), with its own includes.
    One { field: Ident, include: Vec<Include> },
    /// The rows of `table` whose reference field `by` holds the row's id, as an array under
    /// `name`: in `order` then `id`, at most `limit` of them, only those the table's `list`
    /// rule lets through, each with its own includes.
    Many {
        name: Ident,
        table: Ident,
        by: Ident,
        order: Vec<(Ident, bool)>,
        limit: u32,
        include: Vec<Include>,
    },
}

/// What rendering the includes of a row carries along: the tables, the rules of included
/// tables, the statement's parameters and the next alias number.
struct Within<'w, 'g, S> {
    tables: &'w Tables,
    guard: Option<IncludeGuard<'g, S>>,
    params: &'w mut Params<S>,
    next: &'w mut usize,
}

impl<S> Within<'_, '_, S> {
    /// ` AND <rule>` of `table` doing `action` over `alias`, or nothing.
    fn rule(&mut self, table: &str, action: &str, alias: &str) -> String {
        self.guard
            .and_then(|g| g(table, action, alias, self.params))
            .map(|r| format!(" AND {r}"))
            .unwrap_or_default()
    }
}

/// The JSON of row `alias` of `def`: every readable column (or only `columns`), with each
/// include as a correlated subquery on an indexed key, evaluated for the returned rows only;
/// one statement however deep the includes go.
fn row_with<S>(
    w: &mut Within<'_, '_, S>,
    def: &TableDef,
    alias: &str,
    columns: &[Ident],
    include: &[Include],
) -> Result<String, NotAReference> {
    let mut subqueries = Vec::with_capacity(include.len());
    for inc in include {
        let k = *w.next;
        *w.next += 1;
        match inc {
            Include::One { field, include } => {
                let not_ref = || NotAReference(format!("{}.{field}", def.name));
                let target = def
                    .field(field.as_str())
                    .filter(|f| f.ty == super::FieldType::Reference)
                    .and_then(|f| f.table.as_ref())
                    .ok_or_else(not_ref)?;
                let tdef = w.tables.get(target.as_str()).ok_or_else(not_ref)?;
                let a = format!("i{k}");
                let rule = w.rule(target.as_str(), "view", &a);
                let row = row_with(w, tdef, &a, &[], include)?;
                subqueries.push((
                    field,
                    format!(
                        "(SELECT {row} FROM {} AS {a} WHERE {a}.\"id\" = {alias}.{}{rule})",
                        crate::tables::ddl::qualified(target),
                        field.quoted()
                    ),
                ));
            }
            Include::Many {
                name,
                table,
                by,
                order,
                limit,
                include,
            } => {
                let not_ref = || NotAReference(format!("{table}.{by}"));
                let tdef = w.tables.get(table.as_str()).ok_or_else(not_ref)?;
                tdef.field(by.as_str())
                    .filter(|f| f.table.as_ref() == Some(&def.name))
                    .ok_or_else(not_ref)?;
                let (m, a) = (format!("m{k}"), format!("i{k}"));
                let order_on = |x: &str| {
                    order
                        .iter()
                        .map(|(c, desc)| {
                            format!("{x}.{}{}", c.quoted(), if *desc { " DESC" } else { "" })
                        })
                        .chain(std::iter::once(format!("{x}.\"id\"")))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let rule = w.rule(table.as_str(), "list", &m);
                let row = row_with(w, tdef, &a, &[], include)?;
                // The limit is a number of the flow document (checked at compile time), never
                // a request's value.
                subqueries.push((
                    name,
                    format!(
                        "(SELECT coalesce(json_agg({row} ORDER BY {}), '[]'::json) FROM \
                         (SELECT * FROM {} AS {m} WHERE {m}.{} = {alias}.\"id\"{rule} \
                         ORDER BY {} LIMIT {limit}) AS {a})",
                        order_on(&a),
                        crate::tables::ddl::qualified(table),
                        by.quoted(),
                        order_on(&m),
                    ),
                ));
            }
        }
    }
    let pairs: Vec<String> = columns
        .iter()
        .filter(|c| !subqueries.iter().any(|(f, _)| f == c))
        .map(|c| format!("'{c}', {alias}.{}", c.quoted()))
        .chain(subqueries.iter().map(|(c, sub)| format!("'{c}', {sub}")))
        .collect();
    // jsonb_build_object takes at most 100 arguments.
    let objects: Vec<String> = pairs
        .chunks(50)
        .map(|c| format!("jsonb_build_object({})", c.join(", ")))
        .collect();
    Ok(match (columns.is_empty(), objects.is_empty()) {
        (true, true) => row_json(def, alias),
        (true, false) => format!(
            "({}::jsonb || {})",
            row_json(def, alias),
            objects.join(" || ")
        ),
        (false, _) => objects.join(" || "),
    })
}

/// The number of rows matching `filter`.
pub fn count<S: Slot + Clone>(def: &TableDef, filter: Option<&Filter<S>>) -> Statement<S> {
    let mut params = Params::default();
    let conds: Vec<String> = filter
        .map(|f| render_filter(f, &mut params))
        .into_iter()
        .collect();
    params.statement(format!(
        "SELECT count(*) FROM {}{}",
        from(def),
        where_clause(&conds)
    ))
}

/// The row with id `id`, as [`row_json`].
pub fn get<S>(def: &TableDef, id: S, guard: Option<Guard<'_, S>>) -> Statement<S> {
    let mut params = Params::default();
    let cond = id_condition(def, id, &mut params);
    let cond = guarded(cond, guard, &mut params);
    params.statement(format!(
        "SELECT {} FROM {} WHERE {cond}",
        row_json(def, "t"),
        from(def)
    ))
}

/// [`get`] with `include`: the rules of included tables come after the guard's parameters,
/// in the order of the includes, depth first.
pub fn get_with<S>(
    def: &TableDef,
    tables: &Tables,
    id: S,
    guard: Option<Guard<'_, S>>,
    include: &[Include],
    include_guard: Option<IncludeGuard<'_, S>>,
) -> Result<Statement<S>, NotAReference> {
    let mut params = Params::default();
    let cond = id_condition(def, id, &mut params);
    let cond = guarded(cond, guard, &mut params);
    let mut n = 0;
    let row = row_with(
        &mut Within {
            tables,
            guard: include_guard,
            params: &mut params,
            next: &mut n,
        },
        def,
        "t",
        &[],
        include,
    )?;
    Ok(params.statement(format!("SELECT {row} FROM {} WHERE {cond}", from(def))))
}

/// The row whose `email` column equals the slot, as `{"row": <row JSON>, "hash": <password>}`:
/// an account and its password hash for a password check. The hash leaves the database only
/// into the caller, never inside the row.
pub fn credentials<S>(def: &TableDef, email: &Ident, password: &Ident, value: S) -> Statement<S> {
    let mut params = Params::default();
    let p = params.add(value, "text");
    params.statement(format!(
        "SELECT jsonb_build_object('row', {}, 'hash', t.{}) FROM {} WHERE t.{} = {p}",
        row_json(def, "t"),
        password.quoted(),
        from(def),
        email.quoted()
    ))
}
