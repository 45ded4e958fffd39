//! The condition language of access rules on tables: the grammar and operators of `db.query`
//! filters, with values that are literals or the caller's
//! `{"auth": "id"}` / `{"auth": "claims.<name>"}` or the request's
//! `{"request": "headers.<name>"}`, and one relational form,
//! `{"exists": {"table", "where"}}`, whose conditions may also compare with the checked row
//! (`{"row": "<field>"}`), for team and membership checks. A rule compiles twice from one
//! parse: to SQL over row `t` (values as parameters, for prepared statements) and to an
//! in-memory predicate (for rows that never pass through SQL, given the rows of the tables an
//! `exists` reads). Both give the same answer for every row and caller.
//!
//! One difference from `db.query` filters, on purpose: a value that is null when the rule runs
//! (an anonymous caller's `auth.id`, a missing claim) never skips its condition; the condition
//! matches nothing. So a rule can only narrow.
//!
//! Pure: no IO. Identifiers reach SQL only as validated [`Ident`]s, quoted; values only as
//! parameters.

use super::def::{TableDef, Tables};
use super::ident::Ident;
use super::query::{self, FilterOp, Params};
use super::types::FieldType;
use super::value;
use crate::base::Problem;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The most conditions one rule may have.
pub const MAX_CONDITIONS: usize = 32;
/// The deepest nesting of `and`/`or` groups.
pub const MAX_DEPTH: usize = 4;

/// Where a rule's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A literal, checked against the column's type when the rule was saved.
    Literal(Value),
    /// The caller's id (`auth.id`).
    AuthId,
    /// One claim of the caller's token (`auth.claims.<name>`).
    Claim(String),
    /// A field of the row the rule checks, inside an `exists` (`{"row": "<field>"}`). Written
    /// into the SQL as a column of the outer row, never a parameter.
    Row(Ident),
    /// A value of the request (`{"request": "headers.x-tenant"}`), converted to the field's
    /// type; one that does not convert is null, so it matches nothing.
    Request(RequestValue),
}

/// A value a rule reads from the request: a path parameter, a query parameter or a header.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestValue {
    pub part: RequestPart,
    /// The parameter's name; a header's in lowercase.
    pub name: String,
    /// Whether the field holds 64-bit integers (the value is then parsed as one); otherwise
    /// it holds text and the value must be text.
    pub integer: bool,
}

/// The part of the request a [`RequestValue`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestPart {
    Params,
    Query,
    Headers,
}

impl RequestPart {
    fn key(self) -> &'static str {
        match self {
            RequestPart::Params => "params",
            RequestPart::Query => "query",
            RequestPart::Headers => "headers",
        }
    }
}

/// Who a rule is judged for: the caller (`{"id", "claims"}`, null when anonymous) and the
/// request as a flow sees it (`{"params", "query", "headers", ...}`, null outside a request).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub auth: &'a Value,
    pub request: &'a Value,
}

static NULL: Value = Value::Null;

impl<'a> Caller<'a> {
    /// A caller without a request (a rule that reads the request then matches nothing).
    pub fn auth(auth: &'a Value) -> Caller<'a> {
        Caller {
            auth,
            request: &NULL,
        }
    }
}

impl Source {
    /// The value for `caller`: null for an anonymous caller's id, a missing claim or request
    /// value, or a request value that is not of the field's type.
    pub fn resolve<'a>(&'a self, caller: Caller<'a>) -> Cow<'a, Value> {
        match self {
            Source::Literal(v) => Cow::Borrowed(v),
            Source::AuthId => Cow::Borrowed(caller.auth.get("id").unwrap_or(&NULL)),
            Source::Claim(name) => Cow::Borrowed(
                caller
                    .auth
                    .get("claims")
                    .and_then(|c| c.get(name))
                    .unwrap_or(&NULL),
            ),
            // Only conditions inside an `exists` have one; those read the outer row
            // ([`Condition::eval`]).
            Source::Row(_) => Cow::Borrowed(&NULL),
            Source::Request(r) => {
                let v = caller
                    .request
                    .get(r.part.key())
                    .and_then(|p| p.get(&r.name))
                    .unwrap_or(&NULL);
                match (v, r.integer) {
                    (Value::String(s), true) => {
                        Cow::Owned(s.trim().parse::<i64>().map_or(Value::Null, Value::from))
                    }
                    (Value::Number(n), true) if n.is_i64() => Cow::Borrowed(v),
                    (Value::String(_), false) => Cow::Borrowed(v),
                    _ => Cow::Borrowed(&NULL),
                }
            }
        }
    }
}

/// One condition of a rule: `column op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub column: Ident,
    /// The SQL type the value is cast to.
    pub cast: &'static str,
    pub op: FilterOp,
    pub value: Source,
}

/// A rule's condition tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Cond(Cond),
    /// Some row of another table meets a condition (which may read the checked row).
    Exists(Box<Exists>),
}

/// `{"exists": {"table", "where"}}`: a row of `table` satisfies `condition`. It reads the table
/// as it is: that table's own rules do not apply inside another table's rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Exists {
    pub table: Ident,
    pub condition: Condition,
}

/// The alias of the row an `exists` looks at, inside its subquery.
const EXISTS_ALIAS: &str = "x";

/// The rows of the tables an `exists` reads, for the in-memory predicate.
pub trait Lookup {
    /// Every row of `table`, as `to_jsonb` writes them.
    fn rows(&self, table: &str) -> &[Map<String, Value>];
}

impl Lookup for std::collections::HashMap<String, Vec<Map<String, Value>>> {
    fn rows(&self, table: &str) -> &[Map<String, Value>] {
        self.get(table).map_or(&[], Vec::as_slice)
    }
}

/// No other table's rows: for rules without `exists`, where nothing is looked up.
pub struct NoRows;

impl Lookup for NoRows {
    fn rows(&self, _: &str) -> &[Map<String, Value>] {
        &[]
    }
}

/// What a rule parameter is bound as, so every caller binds it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindAs {
    /// The value as text (JSON text for non-strings); Postgres casts it.
    Text,
    /// The LIKE pattern of the text value (`contains`, `starts_with`).
    Like(FilterOp),
    /// The JSON text of an array of values (`in`).
    JsonList,
}

/// One parameter of a rendered rule: where its value comes from and how it is bound.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleParam {
    pub source: Source,
    pub bind: BindAs,
}

impl Condition {
    /// Parses and checks `doc` against `def`: every problem, each with a JSON pointer under
    /// `at`.
    pub fn parse(
        doc: &Value,
        def: &TableDef,
        tables: &Tables,
        at: &str,
    ) -> Result<Condition, Vec<Problem>> {
        let mut p = Parser::new(def, tables);
        let c = p.node(doc, at, 0);
        if p.conditions > MAX_CONDITIONS {
            p.problems.push(Problem::new(
                at,
                format!("a rule has at most {MAX_CONDITIONS} conditions"),
            ));
        }
        match c {
            Some(c) if p.problems.is_empty() => Ok(c),
            _ => Err(p.problems),
        }
    }

    /// The columns of the ruled table the condition reads (those an `exists` compares with
    /// included).
    pub fn columns(&self) -> Vec<&Ident> {
        let mut out = Vec::new();
        self.walk(&mut |c, inside| match (&c.value, inside) {
            (_, false) => out.push(&c.column),
            (Source::Row(field), true) => out.push(field),
            _ => {}
        });
        out
    }

    /// The other tables the condition reads (`exists`).
    pub fn tables(&self) -> Vec<&Ident> {
        match self {
            Condition::And(items) | Condition::Or(items) => {
                items.iter().flat_map(Condition::tables).collect()
            }
            Condition::Cond(_) => Vec::new(),
            Condition::Exists(e) => vec![&e.table],
        }
    }

    /// The parameters [`Condition::sql`] adds, in its order.
    pub fn params(&self) -> Vec<RuleParam> {
        let mut p = Params::default();
        let _ = self.sql("t", &mut p, &|param| param);
        p.statement(String::new()).slots
    }

    /// Calls `f` with every condition and whether it is inside an `exists`.
    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Cond, bool)) {
        self.walk_in(false, f);
    }

    fn walk_in<'a>(&'a self, inside: bool, f: &mut impl FnMut(&'a Cond, bool)) {
        match self {
            Condition::And(items) | Condition::Or(items) => {
                items.iter().for_each(|i| i.walk_in(inside, f))
            }
            Condition::Cond(c) => f(c, inside),
            Condition::Exists(e) => e.condition.walk_in(true, f),
        }
    }

    /// The condition as SQL over row `alias`, its values added to `params` through `slot`.
    pub fn sql<S>(
        &self,
        alias: &str,
        params: &mut Params<S>,
        slot: &impl Fn(RuleParam) -> S,
    ) -> String {
        self.render(alias, None, params, slot)
    }

    /// The SQL over row `alias`; inside an `exists`, `outer` is the checked row's alias.
    fn render<S>(
        &self,
        alias: &str,
        outer: Option<&str>,
        params: &mut Params<S>,
        slot: &impl Fn(RuleParam) -> S,
    ) -> String {
        match self {
            Condition::And(items) if items.is_empty() => "TRUE".into(),
            Condition::Or(items) if items.is_empty() => "FALSE".into(),
            Condition::And(items) | Condition::Or(items) => {
                let sep = if matches!(self, Condition::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| i.render(alias, outer, params, slot))
                    .collect();
                format!("({})", parts.join(sep))
            }
            Condition::Cond(c) => cond_sql(c, alias, outer, params, slot),
            Condition::Exists(e) => {
                let inner = e.condition.render(EXISTS_ALIAS, Some(alias), params, slot);
                format!(
                    "EXISTS (SELECT 1 FROM {} AS {EXISTS_ALIAS} WHERE {inner})",
                    super::ddl::qualified(&e.table)
                )
            }
        }
    }

    /// Whether `row` (as `to_jsonb` writes it) satisfies the condition for `caller`; an
    /// `exists` looks through the rows `others` gives.
    pub fn eval(&self, row: &Map<String, Value>, caller: Caller<'_>, others: &dyn Lookup) -> bool {
        self.eval_in(row, None, caller, others)
    }

    fn eval_in(
        &self,
        row: &Map<String, Value>,
        outer: Option<&Map<String, Value>>,
        caller: Caller<'_>,
        others: &dyn Lookup,
    ) -> bool {
        match self {
            Condition::And(items) => items.iter().all(|i| i.eval_in(row, outer, caller, others)),
            Condition::Or(items) => items.iter().any(|i| i.eval_in(row, outer, caller, others)),
            Condition::Cond(c) => {
                let value = match (&c.value, outer) {
                    (Source::Row(field), Some(outer)) => {
                        Cow::Borrowed(outer.get(field.as_str()).unwrap_or(&NULL))
                    }
                    (source, _) => source.resolve(caller),
                };
                if value.is_null() {
                    return false;
                }
                let field = row.get(c.column.as_str()).unwrap_or(&Value::Null);
                super::matching::holds(field, c.op, &value)
            }
            Condition::Exists(e) => others
                .rows(e.table.as_str())
                .iter()
                .any(|candidate| e.condition.eval_in(candidate, Some(row), caller, others)),
        }
    }
}

/// One condition in SQL: `(t.col op p)`, false for a null value; `ne` is
/// `(p IS NOT NULL AND t.col IS DISTINCT FROM p)`, so a null value matches nothing there too.
/// `is_null` takes a literal flag and is written inline; a value from the checked row (inside an
/// `exists`) is that row's column.
fn cond_sql<S>(
    c: &Cond,
    alias: &str,
    outer: Option<&str>,
    params: &mut Params<S>,
    slot: &impl Fn(RuleParam) -> S,
) -> String {
    let col = format!("{alias}.{}", c.column.quoted());
    if let (Source::Row(field), Some(outer)) = (&c.value, outer) {
        let other = format!("{outer}.{}", field.quoted());
        let test = query::compare_sql(&col, c.op, &other, c.cast, true);
        return if c.op == FilterOp::Ne {
            format!("({other} IS NOT NULL AND {test})")
        } else {
            format!("({test})")
        };
    }
    if c.op == FilterOp::IsNull {
        let flag = matches!(c.value, Source::Literal(Value::Bool(true)));
        return if flag {
            format!("{col} IS NULL")
        } else {
            format!("{col} IS NOT NULL")
        };
    }
    let bind = match c.op {
        FilterOp::In => BindAs::JsonList,
        FilterOp::Contains | FilterOp::StartsWith => BindAs::Like(c.op),
        _ => BindAs::Text,
    };
    let cast = query::param_cast(c.op, c.cast, true);
    let p = params.add(
        slot(RuleParam {
            source: c.value.clone(),
            bind,
        }),
        &cast,
    );
    let test = query::compare_sql(&col, c.op, &p, c.cast, true);
    // Every comparison but `ne` (`IS DISTINCT FROM`) is already false for a NULL value: only
    // that one needs the guard, and a simpler statement plans faster.
    if c.op == FilterOp::Ne {
        format!("({p} IS NOT NULL AND {test})")
    } else {
        format!("({test})")
    }
}

/// The text a rule parameter is bound as for the caller `auth`: `None` (SQL NULL) when its
/// value is null, so the condition matches nothing.
pub fn bind_text(param: &RuleParam, caller: Caller<'_>) -> Option<String> {
    let v = param.source.resolve(caller);
    match (v.as_ref(), param.bind) {
        (Value::Null, _) => None,
        (Value::String(s), BindAs::Like(op)) => Some(query::like_pattern(op, s)),
        (_, BindAs::Like(_)) => None,
        (Value::Array(_), BindAs::JsonList) => Some(v.to_string()),
        (_, BindAs::JsonList) => None,
        (Value::String(s), BindAs::Text) => Some(s.clone()),
        (other, BindAs::Text) => Some(other.to_string()),
    }
}

struct Parser<'d> {
    def: &'d TableDef,
    tables: &'d Tables,
    problems: Vec<Problem>,
    conditions: usize,
    /// Inside an `exists`: the ruled table, whose fields `{"row": ...}` names.
    outer: Option<&'d TableDef>,
}

impl<'d> Parser<'d> {
    fn new(def: &'d TableDef, tables: &'d Tables) -> Parser<'d> {
        Parser {
            def,
            tables,
            problems: Vec::new(),
            conditions: 0,
            outer: None,
        }
    }

    /// `{"exists": {"table", "where"}}` at `at` (its only key, checked by the caller).
    fn exists(&mut self, doc: &Value, at: &str, depth: usize) -> Option<Condition> {
        let at = format!("{at}/exists");
        if self.outer.is_some() {
            self.bad(at, "an exists cannot be inside another exists");
            return None;
        }
        let Some(m) = doc.as_object() else {
            self.bad(at, "expected {\"table\": ..., \"where\": ...}");
            return None;
        };
        for k in m.keys() {
            if !matches!(k.as_str(), "table" | "where") {
                self.bad(
                    format!("{at}/{k}"),
                    format!("unknown key `{k}`; an exists has table and where"),
                );
            }
        }
        let table = match m.get("table").and_then(Value::as_str) {
            Some(name) => match self.tables.get(name) {
                Some(def) => Some(def),
                None if name == self.def.name.as_str() => Some(self.def),
                None => {
                    self.bad(format!("{at}/table"), format!("no table named `{name}`"));
                    None
                }
            },
            None => {
                self.bad(&at, "an exists needs a `table`");
                None
            }
        };
        let Some(doc) = m.get("where") else {
            self.bad(&at, "an exists needs a `where`");
            return None;
        };
        let def = table?;
        let mut inner = Parser {
            def,
            tables: self.tables,
            problems: Vec::new(),
            conditions: 0,
            outer: Some(self.def),
        };
        let condition = inner.node(doc, &format!("{at}/where"), depth + 1);
        self.conditions += inner.conditions;
        self.problems.extend(inner.problems);
        Some(Condition::Exists(Box::new(Exists {
            table: def.name.clone(),
            condition: condition?,
        })))
    }

    /// `{"row": "<field>"}` inside an exists: the checked row's field, compared with `col` of
    /// the looked-at table by `op`.
    fn row_value(
        &mut self,
        col: &query::Column,
        op: FilterOp,
        name: Option<&str>,
        at: &str,
    ) -> Option<Source> {
        let Some(outer) = self.outer else {
            self.bad(
                at,
                "{\"row\": ...} names a field of the checked row, only inside an exists",
            );
            return None;
        };
        if !matches!(
            op,
            FilterOp::Eq | FilterOp::Ne | FilterOp::Lt | FilterOp::Le | FilterOp::Gt | FilterOp::Ge
        ) {
            self.bad(
                at,
                format!(
                    "a field of the checked row is compared with eq, ne, lt, le, gt or ge, not {}",
                    op.name()
                ),
            );
            return None;
        }
        let Some(name) = name else {
            self.bad(at, "expected {\"row\": \"<field>\"}");
            return None;
        };
        match query::column(outer, self.tables, name) {
            None => {
                self.bad(at, format!("table `{}` has no field `{name}`", outer.name));
                None
            }
            Some(c) if c.ty == FieldType::Password => {
                self.bad(
                    at,
                    format!("`{name}` is a password field; rules cannot read it"),
                );
                None
            }
            Some(c) if c.cast != col.cast => {
                self.bad(
                    at,
                    format!(
                        "`{}.{name}` ({}) cannot be compared with `{}.{}` ({})",
                        outer.name, c.cast, self.def.name, col.ident, col.cast
                    ),
                );
                None
            }
            Some(c) => Some(Source::Row(c.ident)),
        }
    }

    /// `{"request": "<params|query|headers>.<name>"}`, compared with `col` by `op`.
    fn request_value(
        &mut self,
        col: &query::Column,
        op: FilterOp,
        path: Option<&str>,
        vat: &str,
        oat: &str,
    ) -> Option<Source> {
        if matches!(op, FilterOp::IsNull | FilterOp::In) {
            self.bad(oat, format!("{} does not take a request value", op.name()));
            return None;
        }
        let integer = match col.ty {
            FieldType::Integer => true,
            FieldType::Reference => col.cast == "bigint",
            FieldType::Text | FieldType::Email | FieldType::Enum | FieldType::Uuid => false,
            _ => {
                self.bad(
                    vat,
                    "a request value compares with text, email, enum, uuid, integer and reference fields",
                );
                return None;
            }
        };
        let parsed = path
            .and_then(|p| p.split_once('.'))
            .and_then(|(part, name)| {
                let part = match part {
                    "params" => RequestPart::Params,
                    "query" => RequestPart::Query,
                    "headers" => RequestPart::Headers,
                    _ => return None,
                };
                let name = if part == RequestPart::Headers {
                    name.to_ascii_lowercase()
                } else {
                    name.to_string()
                };
                valid_claim(&name).then_some((part, name))
            });
        match parsed {
            // Credentials never reach a flow's request, so a rule cannot read them either.
            Some((RequestPart::Headers, name))
                if matches!(name.as_str(), "authorization" | "cookie") =>
            {
                self.bad(vat, format!("the `{name}` header is not readable by rules"));
                None
            }
            Some((part, name)) => Some(Source::Request(RequestValue {
                part,
                name,
                integer,
            })),
            None => {
                self.bad(
                    vat,
                    "expected {\"request\": \"params.<name>\"}, \"query.<name>\" or \"headers.<name>\"",
                );
                None
            }
        }
    }

    fn bad(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(at, message));
    }

    fn node(&mut self, doc: &Value, at: &str, depth: usize) -> Option<Condition> {
        let Some(m) = doc.as_object() else {
            self.bad(
                at,
                "expected {\"and\": [...]}, {\"or\": [...]}, {\"exists\": ...} or {\"field\", \"op\", \"value\"}",
            );
            return None;
        };
        for group in ["and", "or"] {
            let Some(items) = m.get(group) else { continue };
            if m.len() != 1 {
                self.bad(at, format!("a group has only the key `{group}`"));
                return None;
            }
            if depth >= MAX_DEPTH {
                self.bad(at, format!("groups nest at most {MAX_DEPTH} deep"));
                return None;
            }
            let Some(items) = items.as_array() else {
                self.bad(format!("{at}/{group}"), "expected an array of conditions");
                return None;
            };
            let parsed: Vec<Option<Condition>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| self.node(item, &format!("{at}/{group}/{i}"), depth + 1))
                .collect();
            let parsed: Option<Vec<Condition>> = parsed.into_iter().collect();
            return parsed.map(|items| {
                if group == "and" {
                    Condition::And(items)
                } else {
                    Condition::Or(items)
                }
            });
        }
        self.conditions += 1;
        if let Some(inner) = m.get("exists") {
            if m.len() != 1 {
                self.bad(at, "an exists has only the key `exists`");
                return None;
            }
            return self.exists(inner, at, depth);
        }
        for k in m.keys() {
            if !matches!(k.as_str(), "field" | "op" | "value") {
                self.bad(
                    format!("{at}/{k}"),
                    format!("unknown key `{k}`; a condition has field, op and value"),
                );
            }
        }
        let column = match m.get("field").and_then(Value::as_str) {
            Some(name) => match query::column(self.def, self.tables, name) {
                Some(c) if c.ty == FieldType::Password => {
                    self.bad(
                        format!("{at}/field"),
                        format!("`{name}` is a password field; rules cannot read it"),
                    );
                    None
                }
                Some(c) => Some(c),
                None => {
                    self.bad(
                        format!("{at}/field"),
                        format!("table `{}` has no field `{name}`", self.def.name),
                    );
                    None
                }
            },
            None => {
                self.bad(at, "a condition needs a `field`");
                None
            }
        };
        let op = match m.get("op").and_then(Value::as_str) {
            Some(s) => match FilterOp::parse(s) {
                Some(op) => Some(op),
                None => {
                    self.bad(format!("{at}/op"), format!("unknown op `{s}`"));
                    None
                }
            },
            None => {
                self.bad(at, "a condition needs an `op`");
                None
            }
        };
        let Some(v) = m.get("value") else {
            self.bad(at, "a condition needs a `value`");
            return None;
        };
        let (column, op) = (column?, op?);
        let value = self.value(&column, op, v, at)?;
        Some(Condition::Cond(Cond {
            column: column.ident,
            cast: column.cast,
            op,
            value,
        }))
    }

    fn value(&mut self, col: &query::Column, op: FilterOp, v: &Value, at: &str) -> Option<Source> {
        let (vat, oat) = (format!("{at}/value"), format!("{at}/op"));
        if op.is_ordering() && !col.ty.is_ordered() {
            self.bad(
                oat,
                format!("`{}` cannot be compared with {}", col.ident, op.name()),
            );
            return None;
        }
        if op.is_like() && !query::is_text_like(col.ty) {
            self.bad(
                oat,
                format!("{} applies to text, email and enum fields", op.name()),
            );
            return None;
        }
        if let Some(m) = v.as_object()
            && m.len() == 1
            && let Some(field) = m.get("row")
        {
            return self.row_value(col, op, field.as_str(), &vat);
        }
        if let Some(m) = v.as_object()
            && m.len() == 1
            && let Some(path) = m.get("request")
        {
            return self.request_value(col, op, path.as_str(), &vat, &oat);
        }
        if let Some(m) = v.as_object()
            && let Some(path) = m.get("auth")
        {
            if op == FilterOp::IsNull {
                self.bad(vat, "is_null takes true or false");
                return None;
            }
            return match (m.len(), path.as_str()) {
                (1, Some("id")) => Some(Source::AuthId),
                (1, Some(p)) if p.strip_prefix("claims.").is_some_and(valid_claim) => {
                    Some(Source::Claim(p["claims.".len()..].to_string()))
                }
                _ => {
                    self.bad(
                        vat,
                        "expected {\"auth\": \"id\"} or {\"auth\": \"claims.<name>\"}",
                    );
                    None
                }
            };
        }
        let check = |v: &Value| match v {
            Value::Null => Err("null is not a value to compare with".to_string()),
            v => value::from_json(&col.spec, v).map(|_| ()),
        };
        let ok = match op {
            FilterOp::IsNull => v
                .is_boolean()
                .then_some(())
                .ok_or("is_null takes true or false".into()),
            FilterOp::In => match v.as_array() {
                Some(items) if items.len() <= 1000 => items.iter().try_for_each(check),
                _ => Err("in takes an array of at most 1000 values".into()),
            },
            FilterOp::Contains | FilterOp::StartsWith => match v {
                Value::String(s) if !s.contains('\0') => Ok(()),
                _ => Err("expected text".into()),
            },
            _ => check(v),
        };
        match ok {
            Ok(()) => Some(Source::Literal(v.clone())),
            Err(e) => {
                self.bad(vat, e);
                None
            }
        }
    }
}

/// A table's `create` rule, checked against the table: columns it sets whatever the node
/// writes, and a check on the new row.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRule {
    /// Columns and the value each always gets (a literal or the caller's).
    pub set: Vec<(Ident, Source)>,
    /// What the written values must satisfy (columns left to their default read as null).
    pub check: Option<Condition>,
}

impl CreateRule {
    /// Parses `set` (column → value) and `check`, with pointers under `at`.
    pub fn parse(
        set: &Map<String, Value>,
        check: Option<&Value>,
        def: &TableDef,
        tables: &Tables,
        at: &str,
    ) -> Result<CreateRule, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut out = Vec::new();
        for (name, v) in set {
            let vat = format!("{at}/set/{name}");
            let Some(col) = def.field(name) else {
                problems.push(Problem::new(
                    &vat,
                    format!("table `{}` has no field `{name}` a rule can set", def.name),
                ));
                continue;
            };
            if matches!(col.ty, FieldType::Password | FieldType::Json) {
                problems.push(Problem::new(
                    &vat,
                    format!(
                        "a rule cannot set `{name}`: password and json fields are not set by rules"
                    ),
                ));
                continue;
            }
            let mut p = Parser::new(def, tables);
            let Some(column) = query::column(def, tables, name) else {
                continue;
            };
            // Checked as the value of an `eq` condition on the column.
            match p.value(&column, FilterOp::Eq, v, &vat) {
                Some(source) if p.problems.is_empty() => out.push((column.ident, source)),
                _ => problems.push(Problem::new(
                    &vat,
                    p.problems
                        .into_iter()
                        .map(|p| p.message)
                        .collect::<Vec<_>>()
                        .join("; "),
                )),
            }
        }
        let check = match check {
            None => None,
            Some(doc) => match Condition::parse(doc, def, tables, &format!("{at}/check")) {
                Ok(c) => Some(c),
                Err(found) => {
                    problems.extend(found);
                    None
                }
            },
        };
        if problems.is_empty() {
            Ok(CreateRule { set: out, check })
        } else {
            Err(problems)
        }
    }
}

/// Every problem of `def`'s access rules, checked against `def` and the other `tables` (a table
/// definition is checked by `TableDef::check` and this together): a change that drops or
/// renames a field a rule reads is refused here, with the rule's pointer.
pub fn check(def: &TableDef, tables: &Tables) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(rules) = &def.rules else {
        return problems;
    };
    for action in super::def::RULE_ACTIONS {
        if let Some(rule) = rules.get(action)
            && let Err(found) = Condition::parse(
                &rule.condition,
                def,
                tables,
                &format!("/rules/{action}/where"),
            )
        {
            problems.extend(found);
        }
        if let Some(doc) = rules.get(action).and_then(|r| r.check.as_ref()) {
            if action == "update" {
                if let Err(found) =
                    Condition::parse(doc, def, tables, &format!("/rules/{action}/check"))
                {
                    problems.extend(found);
                }
            } else {
                problems.push(Problem::new(
                    format!("/rules/{action}/check"),
                    "only update and create rules check the row written",
                ));
            }
        }
        let Some(columns) = rules.get(action).and_then(|r| r.columns.as_ref()) else {
            continue;
        };
        if action != "update" {
            problems.push(Problem::new(
                format!("/rules/{action}/columns"),
                "only an update rule lists the fields callers may change",
            ));
            continue;
        }
        for (i, name) in columns.iter().enumerate() {
            if def.field(name).is_none() {
                problems.push(Problem::new(
                    format!("/rules/update/columns/{i}"),
                    format!("table `{}` has no field `{name}`", def.name),
                ));
            }
        }
    }
    if let Some(c) = &rules.create
        && let Err(found) =
            CreateRule::parse(&c.set, c.check.as_ref(), def, tables, "/rules/create")
    {
        problems.extend(found);
    }
    problems
}

/// The rule of `action` (`list`, `view`, `update`, `delete`) on `def`, parsed; `None` when the
/// action has no rule. One that no longer parses (it was checked when saved, so only a bug gets
/// here) matches nothing.
pub fn condition(def: &TableDef, tables: &Tables, action: &str) -> Option<Condition> {
    let rule = def.rules.as_ref()?.get(action)?;
    Some(Condition::parse(&rule.condition, def, tables, "").unwrap_or(Condition::Or(Vec::new())))
}

/// The `check` of the `update` rule of `def`, parsed: what a changed row must meet (`None`
/// when there is none). One that no longer parses refuses every row.
pub fn update_check(def: &TableDef, tables: &Tables) -> Option<Condition> {
    let doc = def.rules.as_ref()?.update.as_ref()?.check.as_ref()?;
    Some(Condition::parse(doc, def, tables, "").unwrap_or(Condition::Or(Vec::new())))
}

/// Every table in `tables` whose rules no longer hold there, with the first problem: a change
/// to a table that another table's `exists` reads is refused when it breaks that rule.
pub fn broken(tables: &Tables) -> Vec<(String, Problem)> {
    tables
        .values()
        .filter(|def| def.rules.is_some())
        .filter_map(|def| {
            check(def, tables)
                .into_iter()
                .next()
                .map(|p| (def.name.to_string(), p))
        })
        .collect()
}

/// The fields the `update` rule of `def` lets callers change (`None`: every field).
pub fn writable(def: &TableDef) -> Option<&[String]> {
    def.rules.as_ref()?.update.as_ref()?.columns.as_deref()
}

/// The `create` rule of `def`, parsed (`None` when there is none). One that no longer parses
/// refuses every row.
pub fn create(def: &TableDef, tables: &Tables) -> Option<CreateRule> {
    let c = def.rules.as_ref()?.create.as_ref()?;
    Some(
        CreateRule::parse(&c.set, c.check.as_ref(), def, tables, "").unwrap_or(CreateRule {
            set: Vec::new(),
            check: Some(Condition::Or(Vec::new())),
        }),
    )
}

/// A claim name: letters, digits, `_` and `-`, at most 64.
fn valid_claim(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
#[path = "rules/tests.rs"]
mod tests;
