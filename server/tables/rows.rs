//! Rows of managed tables for the admin data API: checks a list request (filter, sort,
//! paging) or a write against the table definition, builds its statement through the
//! table-query layer ([`super::query`]) and runs it with sqlx.
//!
//! Every value is checked against its column by [`value::from_json`](super::value::from_json)
//! first and bound as text, cast in SQL (`$1::bigint`). Reads never return password fields;
//! writes hash them. Postgres errors are classified by [`super::violation`]. Knows sqlx, not
//! axum.

use super::def::{SYSTEM_COLUMNS, TableDef, Tables};
use super::query::{self, Column, FilterOp, Sort, Statement};
use super::store::{self, TableError};
use super::types::{FieldType, IdType};
use super::value::{self, ColumnSpec};
use super::violation::{self, Action, Violation, summary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::postgres::PgArguments;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

pub use super::query::{Cursor, escape_like};
pub use super::violation::Problem;

/// Rows per page when the request names no `limit`.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest `limit`.
pub const MAX_LIMIT: i64 = 1000;
/// How deep `and`/`or` groups may nest.
pub const MAX_DEPTH: usize = 4;
/// Conditions (leaves) in one filter.
pub const MAX_CONDITIONS: usize = 50;
/// Values of one `in` condition.
pub const MAX_IN_VALUES: usize = 1000;
/// Ids of one bulk delete.
pub const MAX_BULK_IDS: usize = 10_000;

/// A row as Postgres rendered it (`to_jsonb` without password fields). Kept as raw JSON text so
/// numbers (large decimals) reach the client exactly as stored.
pub type Row = Box<RawValue>;

/// What went wrong with a row request.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error(transparent)]
    Table(#[from] TableError),
    /// Bad values, unknown or read-only fields, missing required fields; every one of them.
    #[error("invalid row: {}", summary(.0))]
    Invalid(Vec<Problem>),
    /// A filter or sort names a field the table does not have (with any other filter problems).
    #[error("unknown field: {}", summary(.0))]
    UnknownField(Vec<Problem>),
    #[error("invalid filter: {}", summary(.0))]
    Filter(Vec<Problem>),
    /// `sort`, `limit`, `offset` or their combination.
    #[error("{0}")]
    Query(String),
    #[error("{0}")]
    Cursor(String),
    #[error("invalid id: {}", summary(.0))]
    InvalidId(Vec<Problem>),
    #[error("a bulk delete takes at most {MAX_BULK_IDS} ids, not {0}")]
    TooManyIds(usize),
    #[error("there is no row with id {0}")]
    NotFound(String),
    /// The database refused the statement by one of the table's rules (a unique or foreign
    /// key, a check, a required field, a value it cannot take).
    #[error("{}", .0.message())]
    Violation(Violation),
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Every password hashing thread stayed busy.
    #[error("the server is busy; retry shortly")]
    Busy,
    /// The rows of one page add up to more than the result cap (`SLUICE_MAX_RESULT_BYTES`).
    #[error(
        "the rows of this page are larger than {0} bytes (SLUICE_MAX_RESULT_BYTES); ask for fewer rows with `limit`"
    )]
    TooLarge(usize),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl RowError {
    /// The problems to list in the error's `details`.
    pub fn problems(&self) -> &[Problem] {
        match self {
            RowError::Invalid(p)
            | RowError::UnknownField(p)
            | RowError::Filter(p)
            | RowError::InvalidId(p) => p,
            RowError::Violation(v) => &v.problems,
            _ => &[],
        }
    }
}

/// A key of a request object as a JSON pointer token (RFC 6901).
fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

// ---------------------------------------------------------------------------------------------
// SQL text and parameters

/// One bound parameter. Values are bound as text and cast in SQL, so one binding type serves
/// every column type; arrays are `text[]` cast to the column's array type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(Option<String>),
    Array(Vec<String>),
    /// The flag of an `is_null` condition, written into the statement, never bound.
    Flag(bool),
}

impl Bind {
    fn text(s: impl Into<String>) -> Bind {
        Bind::Text(Some(s.into()))
    }
}

impl query::Slot for Bind {
    fn known_flag(&self) -> Option<bool> {
        match self {
            Bind::Flag(b) => Some(*b),
            _ => None,
        }
    }
}

/// A statement of the data API: its values are known when it is built.
pub type Sql = Statement<Bind>;

/// The statement ready to run with its values bound.
fn bound(sql: &Sql) -> sqlx::query::Query<'_, Postgres, PgArguments> {
    // Filters make the text vary per request; caching each shape per connection would only
    // evict the statements that are worth caching.
    let mut q = sqlx::query(&sql.text).persistent(false);
    for b in &sql.slots {
        q = match b {
            Bind::Text(t) => q.bind(t.clone()),
            Bind::Array(a) => q.bind(a.clone()),
            Bind::Flag(f) => q.bind(*f),
        };
    }
    q
}

// ---------------------------------------------------------------------------------------------
// Ids

/// A row id checked against the table's id type, in the text form that is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowId(String);

impl RowId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn id_problem(def: &TableDef) -> &'static str {
    match def.id_type {
        IdType::Bigint => "expected a whole number (this table's ids are bigint)",
        IdType::Uuid => "expected a UUID (this table's ids are uuid)",
    }
}

/// Checks an id from a path.
pub fn parse_id(def: &TableDef, s: &str) -> Result<RowId, RowError> {
    id_text(def, s).ok_or_else(|| RowError::InvalidId(vec![Problem::new("", id_problem(def))]))
}

fn id_text(def: &TableDef, s: &str) -> Option<RowId> {
    match def.id_type {
        IdType::Bigint => s.parse::<i64>().ok().map(|n| RowId(n.to_string())),
        IdType::Uuid => value::is_uuid(s).then(|| RowId(s.to_ascii_lowercase())),
    }
}

/// Checks an id from a JSON body: a number or a string of one for bigint ids (JavaScript cannot
/// hold every bigint as a number), a string for uuid ids.
fn id_from_json(def: &TableDef, v: &Value) -> Option<RowId> {
    match (def.id_type, v) {
        (IdType::Bigint, Value::Number(n)) => n.as_i64().map(|n| RowId(n.to_string())),
        (_, Value::String(s)) => id_text(def, s),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Filters

/// A checked filter: every column is the table's, every value checked against its column.
pub type Filter = query::Filter<Bind>;

struct FilterParser<'a> {
    def: &'a TableDef,
    tables: &'a Tables,
    problems: Vec<Problem>,
    unknown_field: bool,
    conditions: usize,
}

/// Checks a filter document (`null` is no filter). Reports every problem at once, with
/// pointers starting at `/filter`.
pub fn parse_filter(
    def: &TableDef,
    tables: &Tables,
    doc: &Value,
) -> Result<Option<Filter>, RowError> {
    if doc.is_null() {
        return Ok(None);
    }
    let mut p = FilterParser {
        def,
        tables,
        problems: Vec::new(),
        unknown_field: false,
        conditions: 0,
    };
    let filter = p.node(doc, "/filter", 0);
    if p.conditions > MAX_CONDITIONS {
        p.problems.insert(
            0,
            Problem::new(
                "/filter",
                format!(
                    "a filter has at most {MAX_CONDITIONS} conditions, this one has {}",
                    p.conditions
                ),
            ),
        );
    }
    match (filter, p.problems.is_empty()) {
        (Some(f), true) => Ok(Some(f)),
        _ if p.unknown_field => Err(RowError::UnknownField(p.problems)),
        _ => Err(RowError::Filter(p.problems)),
    }
}

impl FilterParser<'_> {
    fn bad(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(at, message));
    }

    /// `depth` is the number of groups around this node.
    fn node(&mut self, v: &Value, at: &str, depth: usize) -> Option<Filter> {
        let Value::Object(m) = v else {
            self.bad(
                at,
                "expected an object: {\"and\": [...]}, {\"or\": [...]} or {\"field\", \"op\", \"value\"}",
            );
            return None;
        };
        let group = match (m.get("and"), m.get("or")) {
            (Some(items), None) => Some((true, items)),
            (None, Some(items)) => Some((false, items)),
            (Some(_), Some(_)) => {
                self.bad(at, "a group is either {\"and\": [...]} or {\"or\": [...]}");
                return None;
            }
            (None, None) => None,
        };
        let Some((and, items)) = group else {
            return self.condition(m, at);
        };
        let key = if and { "and" } else { "or" };
        if m.len() != 1 {
            self.bad(at, format!("a group has only the key \"{key}\""));
        }
        if depth + 1 > MAX_DEPTH {
            self.bad(
                at,
                format!("and/or groups nest at most {MAX_DEPTH} levels deep"),
            );
            return None;
        }
        let Value::Array(items) = items else {
            self.bad(
                format!("{at}/{key}"),
                "expected an array of conditions and groups",
            );
            return None;
        };
        let mut children = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(f) = self.node(item, &format!("{at}/{key}/{i}"), depth + 1) {
                children.push(f);
            }
        }
        Some(if and {
            Filter::And(children)
        } else {
            Filter::Or(children)
        })
    }

    fn condition(&mut self, m: &serde_json::Map<String, Value>, at: &str) -> Option<Filter> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            // Refused as a whole; checking the rest would only grow the answer.
            return None;
        }
        for k in m.keys() {
            if !matches!(k.as_str(), "field" | "op" | "value") {
                self.bad(
                    format!("{at}/{}", token(k)),
                    format!("unknown key `{k}`; a condition has field, op and value"),
                );
            }
        }
        let col = match m.get("field") {
            Some(Value::String(name)) => match query::column(self.def, self.tables, name) {
                None => {
                    self.unknown_field = true;
                    self.bad(
                        format!("{at}/field"),
                        format!("table `{}` has no field `{name}`", self.def.name),
                    );
                    None
                }
                Some(c) if c.ty == FieldType::Password => {
                    self.bad(
                        format!("{at}/field"),
                        format!("`{name}` is a password field; password fields cannot be filtered"),
                    );
                    None
                }
                Some(c) => Some(c),
            },
            Some(_) => {
                self.bad(format!("{at}/field"), "expected a field name");
                None
            }
            None => {
                self.bad(at, "a condition needs a `field`");
                None
            }
        };
        let op = match m.get("op") {
            Some(Value::String(s)) => {
                let op = FilterOp::parse(s);
                if op.is_none() {
                    let names: Vec<&str> = FilterOp::ALL.iter().map(|(n, _)| *n).collect();
                    self.bad(
                        format!("{at}/op"),
                        format!("unknown op `{s}`; use one of {}", names.join(", ")),
                    );
                }
                op
            }
            Some(_) => {
                self.bad(format!("{at}/op"), "expected an op name");
                None
            }
            None => {
                self.bad(at, "a condition needs an `op`");
                None
            }
        };
        let Some(value) = m.get("value") else {
            self.bad(at, "a condition needs a `value`");
            return None;
        };
        let (col, op) = (col?, op?);
        let value = self.value(&col, op, value, at)?;
        Some(Filter::Cond(query::Cond {
            column: col.ident,
            cast: col.cast,
            op,
            value,
        }))
    }

    /// The bound value of a condition at `cond` (a pointer to the condition object).
    fn value(&mut self, col: &Column, op: FilterOp, v: &Value, cond: &str) -> Option<Bind> {
        let (at, op_at) = (&format!("{cond}/value"), format!("{cond}/op"));
        let check = |spec: &ColumnSpec, v: &Value| match v {
            Value::Null => Err(
                "null is not a value to compare with; use {\"op\": \"is_null\", \"value\": true}"
                    .to_string(),
            ),
            v => value::from_json(spec, v).and_then(|t| t.ok_or_else(|| "expected a value".into())),
        };
        match op {
            FilterOp::IsNull => match v {
                Value::Bool(b) => Some(Bind::Flag(*b)),
                _ => {
                    self.bad(at, "is_null takes true or false");
                    None
                }
            },
            op if op.is_ordering() && !col.ty.is_ordered() => {
                self.bad(
                    op_at,
                    format!("`{}` cannot be compared with {}", col.ident, op.name()),
                );
                None
            }
            FilterOp::In => {
                let Value::Array(items) = v else {
                    self.bad(at, "in takes an array of values");
                    return None;
                };
                if items.len() > MAX_IN_VALUES {
                    self.bad(at, format!("in takes at most {MAX_IN_VALUES} values"));
                    return None;
                }
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match check(&col.spec, item) {
                        Ok(t) => out.push(t),
                        Err(e) => self.bad(format!("{at}/{i}"), e),
                    }
                }
                (out.len() == items.len()).then_some(Bind::Array(out))
            }
            FilterOp::Contains | FilterOp::StartsWith => {
                if !query::is_text_like(col.ty) {
                    self.bad(
                        op_at,
                        format!(
                            "{} applies to text, email and enum fields; `{}` is not one",
                            op.name(),
                            col.ident
                        ),
                    );
                    return None;
                }
                match v {
                    Value::String(s) if !s.contains('\0') => {
                        Some(Bind::text(query::like_pattern(op, s)))
                    }
                    _ => {
                        self.bad(at, "expected text (without NUL characters)");
                        None
                    }
                }
            }
            _ => match check(&col.spec, v) {
                Ok(t) => Some(Bind::text(t)),
                Err(e) => {
                    self.bad(at, e);
                    None
                }
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sort and cursor

/// `-priority,title`: up to [`query::MAX_SORT_KEYS`] fields, each ascending or (`-`) descending,
/// each an ordered field named once; `id` only last.
fn parse_sort(def: &TableDef, tables: &Tables, spec: &str) -> Result<Sort, RowError> {
    let terms = query::sort_terms(spec, query::MAX_SORT_KEYS)
        .map_err(|e| RowError::Query(e.to_string()))?;
    let mut keys: Vec<query::OrderKey> = Vec::with_capacity(terms.len());
    for query::SortTerm { name, desc } in terms {
        let column = query::column(def, tables, name).ok_or_else(|| {
            RowError::UnknownField(vec![Problem::new(
                "/sort",
                format!("table `{}` has no field `{name}`", def.name),
            )])
        })?;
        if !column.ty.is_ordered() {
            return Err(RowError::Query(format!(
                "cannot sort by `{name}`: password and json fields have no order"
            )));
        }
        if keys.last().is_some_and(|k| k.column.ident.as_str() == "id") {
            return Err(RowError::Query(
                "`id` is unique: it can only be the last sort key".into(),
            ));
        }
        keys.push(query::OrderKey { column, desc });
    }
    Ok(Sort { keys })
}

/// Reads a cursor this API returned.
fn decode_cursor(s: &str) -> Result<Cursor, RowError> {
    Cursor::decode(s)
        .ok_or_else(|| RowError::Cursor("the cursor is not one this API returned".into()))
}

// ---------------------------------------------------------------------------------------------
// Listing

/// A list request, from the query string or the body of `POST .../rows/query`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    #[serde(default)]
    pub filter: Value,
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub cursor: Option<String>,
    #[serde(default)]
    pub count: bool,
}

/// The statements of a list request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPlan {
    /// Selects up to `limit + 1` rows as `(row, sort key text, id text)`; the extra row tells
    /// whether there is a next page.
    pub rows: Sql,
    /// Counts the rows that match the filter, ignoring paging.
    pub count: Option<Sql>,
    pub limit: i64,
    sort: String,
}

/// Builds the statements of a list request. Pure: checks every name and value first.
pub fn plan_list(def: &TableDef, tables: &Tables, req: &ListRequest) -> Result<ListPlan, RowError> {
    let limit = req.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(RowError::Query(format!(
            "limit must be 1 to {MAX_LIMIT}, not {limit}"
        )));
    }
    let offset = req.offset.unwrap_or(0);
    if offset < 0 {
        return Err(RowError::Query(format!(
            "offset must be 0 or more, not {offset}"
        )));
    }
    let cursor = req.cursor.as_deref().map(decode_cursor).transpose()?;
    if cursor.is_some() && req.offset.is_some() {
        return Err(RowError::Query(
            "page with either offset or cursor, not both".into(),
        ));
    }
    let sort_spec = match (&req.sort, &cursor) {
        (Some(s), Some(c)) if *s != c.sort => {
            return Err(RowError::Cursor(format!(
                "the cursor belongs to sort `{}`, not `{s}`",
                c.sort
            )));
        }
        (Some(s), _) => s.clone(),
        (None, Some(c)) => c.sort.clone(),
        (None, None) => "id".into(),
    };
    let sort = parse_sort(def, tables, &sort_spec).map_err(|e| match (e, &cursor) {
        (_, Some(_)) if req.sort.is_none() => {
            RowError::Cursor("the cursor's sort field no longer exists; start over".into())
        }
        (e, _) => e,
    })?;
    if let Some(c) = &cursor
        && id_text(def, &c.id).is_none()
    {
        return Err(RowError::Cursor(
            "the cursor is not one this API returned".into(),
        ));
    }
    if let Some(c) = &cursor
        && c.keys.len() != sort.value_keys().len()
    {
        return Err(RowError::Cursor(
            "the cursor is not one this API returned".into(),
        ));
    }
    let filter = parse_filter(def, tables, &req.filter)?;
    let rows = query::select(query::Select {
        def,
        filter: filter.as_ref(),
        sort: &sort,
        after: cursor.as_ref().map(|c| {
            let keys = c.keys.iter().map(|k| k.clone().map(Bind::text)).collect();
            (keys, Bind::text(c.id.clone()))
        }),
        limit: Bind::text((limit + 1).to_string()),
        offset: (offset > 0).then(|| Bind::text(offset.to_string())),
    });
    let count = req.count.then(|| query::count(def, filter.as_ref()));
    Ok(ListPlan {
        rows,
        count,
        limit,
        sort: sort.spec(),
    })
}

/// One page of a list.
#[derive(Debug, Serialize)]
pub struct Page {
    pub rows: Vec<Row>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

/// Runs a planned list. Run it in [`snapshot`] when counting, so the page and the total agree.
pub async fn list(
    conn: &mut PgConnection,
    def: &TableDef,
    tables: &Tables,
    plan: &ListPlan,
    max_bytes: usize,
) -> Result<Page, RowError> {
    use futures_core::Stream;
    use sqlx::{Row as _, ValueRef as _};
    // Rows are read one at a time as Postgres sends them, and the page is refused as soon as
    // they add up to more than `max_bytes`: the rest is never held.
    let query = bound(&plan.rows);
    let mut fetched = Box::pin(query.fetch(&mut *conn));
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    while let Some(r) = std::future::poll_fn(|cx| fetched.as_mut().poll_next(cx)).await {
        let r = r.map_err(|e| from_db(e, def, tables, Action::Read))?;
        let raw = r.try_get_raw("row")?;
        bytes += if raw.is_null() {
            0
        } else {
            raw.as_bytes().map_or(0, <[u8]>::len)
        };
        if bytes > max_bytes {
            return Err(RowError::TooLarge(max_bytes));
        }
        let row: Json<Row> = r.try_get("row")?;
        let key: Json<Vec<Option<String>>> = r.try_get("sort_keys")?;
        let id: String = r.try_get("id")?;
        rows.push((row.0, key.0, id));
    }
    drop(fetched);
    let more = rows.len() as i64 > plan.limit;
    rows.truncate(plan.limit as usize);
    let next_cursor = match rows.last() {
        Some((_, key, id)) if more => Some(
            Cursor {
                sort: plan.sort.clone(),
                keys: key.clone(),
                id: id.clone(),
            }
            .encode(),
        ),
        _ => None,
    };
    let total = match &plan.count {
        Some(sql) => Some(
            bound(sql)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| from_db(e, def, tables, Action::Read))?
                .try_get::<i64, _>(0)?,
        ),
        None => None,
    };
    Ok(Page {
        rows: rows.into_iter().map(|(r, _, _)| r).collect(),
        next_cursor,
        total,
    })
}

/// A read-only transaction whose statements all see one snapshot (a page and its total).
pub async fn snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

// ---------------------------------------------------------------------------------------------
// Writes

/// A checked value for one column, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnValue {
    column: super::ident::Ident,
    cast: &'static str,
    value: Option<String>,
    password: bool,
}

/// Whether a write makes a row or changes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Insert,
    Patch,
}

/// Checks a write body: an object of field → value. Reports every unknown, read-only and
/// invalid field at once, and (for inserts) every required field left out. Values come back in
/// the table's field order; passwords still in clear text ([`hash_passwords`]).
pub fn check_values(
    def: &TableDef,
    tables: &Tables,
    body: &Value,
    kind: WriteKind,
) -> Result<Vec<ColumnValue>, RowError> {
    let Value::Object(given) = body else {
        return Err(RowError::Invalid(vec![Problem::new(
            "",
            "expected an object of field values",
        )]));
    };
    let mut problems = Vec::new();
    for key in given.keys() {
        if SYSTEM_COLUMNS.contains(&key.as_str()) {
            problems.push(Problem::new(
                format!("/{key}"),
                format!("`{key}` is set by the database and cannot be written"),
            ));
        } else if def.field(key).is_none() {
            problems.push(Problem::new(
                format!("/{}", token(key)),
                format!("table `{}` has no field `{key}`", def.name),
            ));
        }
    }
    let mut values = Vec::new();
    for f in &def.fields {
        let name = f.name.as_str();
        let Some(spec) = def.column_spec(name, tables) else {
            continue;
        };
        let Some(v) = given.get(name) else {
            if kind == WriteKind::Insert && f.required && f.default.is_none() {
                problems.push(Problem::new(format!("/{name}"), "a value is required"));
            }
            continue;
        };
        match value::from_json(&spec, v) {
            Ok(Some(t)) if f.ty == FieldType::Password && t.is_empty() => {
                problems.push(Problem::new(
                    format!("/{name}"),
                    "a password must not be empty",
                ));
            }
            Ok(t) => values.push(ColumnValue {
                column: f.name.clone(),
                cast: spec.ty.cast_type(spec.target_id),
                value: t,
                password: f.ty == FieldType::Password,
            }),
            Err(message) => problems.push(Problem::new(format!("/{name}"), message)),
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(RowError::Invalid(problems))
    }
}

/// Replaces clear-text passwords by their argon2id hashes.
pub async fn hash_passwords(values: &mut [ColumnValue]) -> Result<(), RowError> {
    for v in values.iter_mut().filter(|v| v.password) {
        v.value = value::for_storage(FieldType::Password, v.value.take())
            .await
            .map_err(|e| match e {
                value::StoreError::Busy => RowError::Busy,
                value::StoreError::Hash(e) => RowError::Hash(e),
            })?;
    }
    Ok(())
}

/// Checks a write body and hashes its passwords: everything a write needs before it touches
/// the database.
pub async fn prepare(
    def: &TableDef,
    tables: &Tables,
    body: &Value,
    kind: WriteKind,
) -> Result<Vec<ColumnValue>, RowError> {
    let mut values = check_values(def, tables, body, kind)?;
    hash_passwords(&mut values).await?;
    Ok(values)
}

fn writes(values: &[ColumnValue]) -> Vec<query::Write<Bind>> {
    values
        .iter()
        .map(|v| query::Write {
            column: v.column.clone(),
            cast: v.cast,
            value: Bind::Text(v.value.clone()),
        })
        .collect()
}

pub fn get_sql(def: &TableDef, id: &RowId) -> Sql {
    query::get(def, Bind::text(id.0.clone()), None)
}

pub fn insert_sql(def: &TableDef, values: &[ColumnValue]) -> Sql {
    query::insert(def, writes(values), query::Returning::Row, None)
}

/// An update of the given columns only. With none, a plain read: an empty patch changes
/// nothing, not even `updated_at`.
pub fn update_sql(def: &TableDef, id: &RowId, values: &[ColumnValue]) -> Sql {
    if values.is_empty() {
        return get_sql(def, id);
    }
    let id = Bind::text(id.0.clone());
    query::update(
        def,
        id,
        writes(values),
        Vec::new(),
        query::Returning::Row,
        None,
        None,
    )
}

pub fn delete_sql(def: &TableDef, id: &RowId) -> Sql {
    query::delete(
        def,
        Bind::text(id.0.clone()),
        query::Returning::Nothing,
        None,
    )
}

/// Checks the ids of a bulk delete, reporting every bad one.
pub fn parse_ids(def: &TableDef, ids: &[Value]) -> Result<Vec<RowId>, RowError> {
    if ids.len() > MAX_BULK_IDS {
        return Err(RowError::TooManyIds(ids.len()));
    }
    let mut out = Vec::with_capacity(ids.len());
    let mut problems = Vec::new();
    for (i, v) in ids.iter().enumerate() {
        match id_from_json(def, v) {
            Some(id) => out.push(id),
            None => problems.push(Problem::new(format!("/ids/{i}"), id_problem(def))),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(RowError::InvalidId(problems))
    }
}

/// One statement for all ids, so a bulk delete is all or nothing.
pub fn delete_many_sql(def: &TableDef, ids: &[RowId]) -> Sql {
    query::delete_many(def, Bind::Array(ids.iter().map(|i| i.0.clone()).collect()))
}

// ---------------------------------------------------------------------------------------------
// Running statements

/// Every table definition (reference targets and referencing tables are needed too).
pub async fn tables(pool: &PgPool) -> Result<Tables, RowError> {
    Ok(store::all(pool).await?)
}

/// The definition of table `name`, or `table.not_found`.
pub fn table<'t>(tables: &'t Tables, name: &str) -> Result<&'t TableDef, RowError> {
    tables
        .get(name)
        .ok_or_else(|| RowError::Table(TableError::NotFound(name.to_string())))
}

async fn one_row(
    conn: &mut PgConnection,
    sql: &Sql,
    def: &TableDef,
    tables: &Tables,
    action: Action,
) -> Result<Option<Row>, RowError> {
    use sqlx::Row as _;
    let row = bound(sql)
        .fetch_optional(conn)
        .await
        .map_err(|e| from_db(e, def, tables, action))?;
    Ok(match row {
        Some(r) => Some(r.try_get::<Json<Row>, _>(0)?.0),
        None => None,
    })
}

pub async fn get(conn: &mut PgConnection, def: &TableDef, id: &RowId) -> Result<Row, RowError> {
    one_row(conn, &get_sql(def, id), def, &Tables::new(), Action::Read)
        .await?
        .ok_or_else(|| RowError::NotFound(id.0.clone()))
}

pub async fn insert(
    conn: &mut PgConnection,
    def: &TableDef,
    tables: &Tables,
    values: &[ColumnValue],
) -> Result<Row, RowError> {
    one_row(conn, &insert_sql(def, values), def, tables, Action::Write)
        .await?
        .ok_or_else(|| RowError::Db(sqlx::Error::RowNotFound))
}

pub async fn update(
    conn: &mut PgConnection,
    def: &TableDef,
    tables: &Tables,
    id: &RowId,
    values: &[ColumnValue],
) -> Result<Row, RowError> {
    one_row(
        conn,
        &update_sql(def, id, values),
        def,
        tables,
        Action::Write,
    )
    .await?
    .ok_or_else(|| RowError::NotFound(id.0.clone()))
}

pub async fn delete(
    conn: &mut PgConnection,
    def: &TableDef,
    tables: &Tables,
    id: &RowId,
) -> Result<(), RowError> {
    let done = bound(&delete_sql(def, id))
        .execute(conn)
        .await
        .map_err(|e| from_db(e, def, tables, Action::Delete))?;
    if done.rows_affected() == 0 {
        return Err(RowError::NotFound(id.0.clone()));
    }
    Ok(())
}

/// Deletes every row with one of `ids`; returns how many there were.
pub async fn delete_many(
    conn: &mut PgConnection,
    def: &TableDef,
    tables: &Tables,
    ids: &[RowId],
) -> Result<u64, RowError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done = bound(&delete_many_sql(def, ids))
        .execute(conn)
        .await
        .map_err(|e| from_db(e, def, tables, Action::Delete))?;
    Ok(done.rows_affected())
}

// ---------------------------------------------------------------------------------------------
// Database errors

/// Sorts a database error into what the client did wrong ([`violation::classify`]) and what
/// went wrong inside.
fn from_db(e: sqlx::Error, def: &TableDef, tables: &Tables, action: Action) -> RowError {
    match violation::facts(&e).and_then(|f| violation::classify(&f, Some(def), tables, action)) {
        Some(v) => RowError::Violation(v),
        None => RowError::Db(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn todos() -> TableDef {
        serde_json::from_value(json!({
            "id": "t_000000000001",
            "name": "todos",
            "fields": [
                {"id": "f_00000000000a", "name": "title", "type": "text", "required": true},
                {"id": "f_00000000000b", "name": "done", "type": "boolean", "required": true, "default": false},
                {"id": "f_00000000000c", "name": "priority", "type": "integer"},
                {"id": "f_00000000000d", "name": "secret", "type": "password"},
                {"id": "f_00000000000e", "name": "meta", "type": "json"},
                {"id": "f_00000000000f", "name": "level", "type": "enum", "values": ["low", "high"]},
                {"id": "f_000000000010", "name": "owner", "type": "reference", "table": "people"}
            ]
        }))
        .expect("a valid definition")
    }

    fn tables() -> Tables {
        let people: TableDef = serde_json::from_value(
            json!({"id": "t_000000000002", "name": "people", "id_type": "uuid", "fields": []}),
        )
        .expect("people");
        [
            ("todos".to_string(), todos()),
            ("people".to_string(), people),
        ]
        .into_iter()
        .collect()
    }

    fn filter(doc: Value) -> Result<(String, Vec<Bind>), RowError> {
        let def = todos();
        let f = parse_filter(&def, &tables(), &doc)?.expect("a filter");
        let mut params = query::Params::default();
        let text = query::render_filter(&f, &mut params);
        Ok((text, params.statement(String::new()).slots))
    }

    fn t(s: &str) -> Bind {
        Bind::text(s)
    }

    fn pointers_of(e: &RowError) -> Vec<&str> {
        e.problems().iter().map(|p| p.pointer.as_str()).collect()
    }

    #[test]
    fn nested_and_or_renders_in_order_with_binds_in_placeholder_order() {
        let (sql, binds) = filter(json!({"and": [
            {"field": "done", "op": "eq", "value": false},
            {"or": [
                {"field": "title", "op": "contains", "value": "milk"},
                {"field": "priority", "op": "ge", "value": 3}
            ]}
        ]}))
        .expect("valid");
        assert_eq!(
            sql,
            "(t.\"done\" = $1::boolean AND (t.\"title\" ILIKE $2::text OR t.\"priority\" >= $3::bigint))"
        );
        assert_eq!(binds, [t("false"), t("%milk%"), t("3")]);
    }

    #[test]
    fn every_op_has_its_sql() {
        let cases = [
            (
                json!({"field": "priority", "op": "ne", "value": 1}),
                "t.\"priority\" IS DISTINCT FROM $1::bigint",
            ),
            (
                json!({"field": "priority", "op": "lt", "value": 1}),
                "t.\"priority\" < $1::bigint",
            ),
            (
                json!({"field": "priority", "op": "le", "value": 1}),
                "t.\"priority\" <= $1::bigint",
            ),
            (
                json!({"field": "created_at", "op": "gt", "value": "2026-01-01T00:00:00Z"}),
                "t.\"created_at\" > $1::timestamptz",
            ),
            (
                json!({"field": "level", "op": "in", "value": ["low", "high"]}),
                "t.\"level\" = ANY($1::text[])",
            ),
            (
                json!({"field": "title", "op": "starts_with", "value": "a"}),
                "t.\"title\" LIKE $1::text",
            ),
            (
                json!({"field": "owner", "op": "is_null", "value": true}),
                "t.\"owner\" IS NULL",
            ),
            (
                json!({"field": "owner", "op": "is_null", "value": false}),
                "t.\"owner\" IS NOT NULL",
            ),
            (
                json!({"field": "meta", "op": "eq", "value": {"a": 1}}),
                "t.\"meta\" = $1::jsonb",
            ),
            (
                json!({"field": "owner", "op": "eq", "value": "0b3c2f1e-8d4a-4c7b-9e2f-1a2b3c4d5e6f"}),
                "t.\"owner\" = $1::uuid",
            ),
            (json!({"and": []}), "TRUE"),
            (json!({"or": []}), "FALSE"),
        ];
        for (doc, want) in cases {
            let (sql, _) = filter(doc.clone()).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(sql, want, "{doc}");
        }
        let (_, binds) =
            filter(json!({"field": "id", "op": "in", "value": [3, 1]})).expect("valid");
        assert_eq!(binds, [Bind::Array(vec!["3".into(), "1".into()])]);
    }

    #[test]
    fn like_patterns_match_percent_underscore_and_backslash_literally() {
        assert_eq!(escape_like(r"50%_off\now"), r"50\%\_off\\now");
        let (sql, binds) = filter(json!({"field": "title", "op": "starts_with", "value": "100%_"}))
            .expect("valid");
        assert_eq!(sql, "t.\"title\" LIKE $1::text");
        assert_eq!(binds, [t(r"100\%\_%")]);
        let (_, binds) =
            filter(json!({"field": "title", "op": "contains", "value": r"a\b"})).expect("valid");
        assert_eq!(binds, [t(r"%a\\b%")]);
    }

    #[test]
    fn unknown_fields_are_refused_with_their_pointers() {
        let e = filter(json!({"or": [
            {"field": "title", "op": "eq", "value": "x"},
            {"field": "nope", "op": "eq", "value": 1},
            {"field": "title\"; DROP TABLE x; --", "op": "eq", "value": 1}
        ]}))
        .expect_err("unknown fields");
        assert!(matches!(e, RowError::UnknownField(_)), "{e:?}");
        assert_eq!(
            pointers_of(&e),
            ["/filter/or/1/field", "/filter/or/2/field"]
        );
    }

    #[test]
    fn password_fields_cannot_be_filtered_or_sorted() {
        let e = filter(json!({"field": "secret", "op": "eq", "value": "hunter2"}))
            .expect_err("refused");
        assert!(matches!(e, RowError::Filter(_)), "{e:?}");
        assert_eq!(pointers_of(&e), ["/filter/field"]);
        let e = filter(json!({"field": "secret", "op": "is_null", "value": true}))
            .expect_err("refused");
        assert!(matches!(e, RowError::Filter(_)));
        let req = ListRequest {
            sort: Some("-secret".into()),
            ..ListRequest::default()
        };
        assert!(matches!(
            plan_list(&todos(), &tables(), &req),
            Err(RowError::Query(_))
        ));
    }

    #[test]
    fn nesting_deeper_than_four_groups_is_refused() {
        let leaf = json!({"field": "done", "op": "eq", "value": true});
        let nest = |n: usize| (0..n).fold(leaf.clone(), |inner, _| json!({"and": [inner]}));
        assert!(filter(nest(4)).is_ok());
        let e = filter(nest(5)).expect_err("too deep");
        assert!(matches!(e, RowError::Filter(_)));
        assert_eq!(pointers_of(&e), ["/filter/and/0/and/0/and/0/and/0"]);
    }

    #[test]
    fn more_than_fifty_conditions_are_refused() {
        let leaf = json!({"field": "done", "op": "eq", "value": true});
        assert!(filter(json!({"or": vec![leaf.clone(); 50]})).is_ok());
        let e = filter(json!({"or": vec![leaf; 51]})).expect_err("too many");
        assert_eq!(pointers_of(&e), ["/filter"]);
        let unknown = json!({"field": "nope", "op": "eq", "value": 1});
        let e = filter(json!({"or": vec![unknown; 5000]})).expect_err("too many");
        assert_eq!(
            e.problems().len(),
            MAX_CONDITIONS + 1,
            "the answer stays small"
        );
    }

    #[test]
    fn bad_ops_and_values_are_all_reported() {
        let e = filter(json!({"and": [
            {"field": "priority", "op": "like", "value": 1},
            {"field": "priority", "op": "eq", "value": "3"},
            {"field": "priority", "op": "contains", "value": "3"},
            {"field": "meta", "op": "lt", "value": 1},
            {"field": "title", "op": "eq", "value": null},
            {"field": "level", "op": "in", "value": ["low", "mid"]},
            {"field": "done", "op": "is_null", "value": "yes"},
            {"field": "done", "op": "eq"},
            {"field": "done", "op": "eq", "value": true, "extra": 1},
            [1]
        ]}))
        .expect_err("bad");
        assert!(matches!(e, RowError::Filter(_)), "{e:?}");
        assert_eq!(
            pointers_of(&e),
            [
                "/filter/and/0/op",
                "/filter/and/1/value",
                "/filter/and/2/op",
                "/filter/and/3/op",
                "/filter/and/4/value",
                "/filter/and/5/value/1",
                "/filter/and/6/value",
                "/filter/and/7",
                "/filter/and/8/extra",
                "/filter/and/9"
            ]
        );
    }

    #[test]
    fn a_list_without_options_sorts_by_id_and_fetches_one_extra_row() {
        let plan = plan_list(&todos(), &tables(), &ListRequest::default()).expect("plan");
        assert_eq!(
            plan.rows.text,
            "SELECT (to_jsonb(t.*) - ARRAY['secret']::text[]) AS row, json_build_array() AS sort_keys, t.\"id\"::text AS id \
             FROM \"app\".\"todos\" AS t ORDER BY t.\"id\" ASC LIMIT $1::bigint"
        );
        assert_eq!(plan.rows.slots, [t("51")]);
        assert_eq!(plan.count, None);
    }

    #[test]
    fn filter_cursor_limit_and_offset_bind_in_order_and_count_shares_the_filter() {
        let def = todos();
        let req = ListRequest {
            filter: json!({"field": "title", "op": "contains", "value": "x"}),
            sort: Some("-priority".into()),
            limit: Some(10),
            cursor: Some(
                Cursor {
                    sort: "-priority".into(),
                    keys: vec![Some("5".into())],
                    id: "42".into(),
                }
                .encode(),
            ),
            count: true,
            ..ListRequest::default()
        };
        let plan = plan_list(&def, &tables(), &req).expect("plan");
        assert!(
            plan.rows.text.ends_with(
                "WHERE t.\"title\" ILIKE $1::text AND (t.\"priority\", t.\"id\") < ($2::bigint, $3::bigint) \
                 ORDER BY t.\"priority\" DESC NULLS FIRST, t.\"id\" DESC LIMIT $4::bigint"
            ),
            "{}",
            plan.rows.text
        );
        assert_eq!(plan.rows.slots, [t("%x%"), t("5"), t("42"), t("11")]);
        let count = plan.count.expect("count");
        assert_eq!(
            count.text,
            "SELECT count(*) FROM \"app\".\"todos\" AS t WHERE t.\"title\" ILIKE $1::text"
        );
        assert_eq!(count.slots, [t("%x%")]);

        let req = ListRequest {
            offset: Some(20),
            ..ListRequest::default()
        };
        let plan = plan_list(&def, &tables(), &req).expect("plan");
        assert!(
            plan.rows
                .text
                .ends_with("LIMIT $1::bigint OFFSET $2::bigint")
        );
        assert_eq!(plan.rows.slots, [t("51"), t("20")]);
    }

    #[test]
    fn keyset_conditions_respect_nulls_and_direction() {
        let def = todos();
        let ts = tables();
        let sort = |s: &str| parse_sort(&def, &ts, s).expect("sort");
        let cur = |keys: &[Option<&str>]| Cursor {
            sort: String::new(),
            keys: keys.iter().map(|k| k.map(String::from)).collect(),
            id: "7".into(),
        };
        let cases = [
            ("id", &[][..], "t.\"id\" > $1::bigint"),
            ("-id", &[], "t.\"id\" < $1::bigint"),
            (
                "title",
                &[Some("b")],
                "(t.\"title\", t.\"id\") > ($1::text, $2::bigint)",
            ),
            (
                "priority",
                &[Some("3")],
                "((t.\"priority\", t.\"id\") > ($1::bigint, $2::bigint) OR t.\"priority\" IS NULL)",
            ),
            (
                "priority",
                &[None],
                "(t.\"priority\" IS NULL AND t.\"id\" > $1::bigint)",
            ),
            (
                "-priority",
                &[Some("3")],
                "(t.\"priority\", t.\"id\") < ($1::bigint, $2::bigint)",
            ),
            (
                "-priority",
                &[None],
                "((t.\"priority\" IS NULL AND t.\"id\" < $1::bigint) OR t.\"priority\" IS NOT NULL)",
            ),
            (
                "-priority,title",
                &[Some("3"), Some("b")],
                "(t.\"priority\" < $1::bigint OR (t.\"priority\" = $1::bigint AND t.\"title\" > $2::text) \
                 OR (t.\"priority\" = $1::bigint AND t.\"title\" = $2::text AND t.\"id\" > $3::bigint))",
            ),
            (
                "priority,-id",
                &[None],
                "(t.\"priority\" IS NULL AND t.\"id\" < $1::bigint)",
            ),
            (
                "priority,title",
                &[None, Some("b")],
                "((t.\"priority\" IS NULL AND t.\"title\" > $1::text) \
                 OR (t.\"priority\" IS NULL AND t.\"title\" = $1::text AND t.\"id\" > $2::bigint))",
            ),
            (
                "-priority,-title",
                &[None, Some("b")],
                "(t.\"priority\" IS NOT NULL OR (t.\"priority\" IS NULL AND t.\"title\" < $1::text) \
                 OR (t.\"priority\" IS NULL AND t.\"title\" = $1::text AND t.\"id\" < $2::bigint))",
            ),
        ];
        for (s, keys, want) in cases {
            let mut params = query::Params::default();
            let c = cur(keys);
            assert_eq!(
                sort(s).after(
                    c.keys.into_iter().map(|k| k.map(Bind::text)).collect(),
                    Bind::text(c.id),
                    "bigint",
                    &mut params
                ),
                want,
                "{s} {keys:?}"
            );
        }
    }

    #[test]
    fn sorts_of_several_keys_are_checked_and_ordered() {
        let (def, ts) = (todos(), tables());
        let sort = parse_sort(&def, &ts, "-priority,title").expect("sort");
        assert_eq!(sort.spec(), "-priority,title");
        assert_eq!(
            sort.order_by(),
            "t.\"priority\" DESC NULLS FIRST, t.\"title\" ASC NULLS LAST, t.\"id\" ASC"
        );
        let sort = parse_sort(&def, &ts, "title,-id").expect("sort");
        assert_eq!(sort.order_by(), "t.\"title\" ASC NULLS LAST, t.\"id\" DESC");
        assert_eq!(sort.value_keys().len(), 1);
        for bad in [
            "",
            "title,",
            ",title",
            "-",
            "title,title",
            "id,title",
            "a,b,c,d,e,f,g,h,i",
        ] {
            assert!(
                matches!(parse_sort(&def, &ts, bad), Err(RowError::Query(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_sort(&def, &ts, "title,nope"),
            Err(RowError::UnknownField(_))
        ));
        assert!(matches!(
            parse_sort(&def, &ts, "title,secret"),
            Err(RowError::Query(_))
        ));
    }

    #[test]
    fn paging_options_are_checked() {
        let (def, ts) = (todos(), tables());
        let plan = |req: ListRequest| plan_list(&def, &ts, &req);
        for limit in [0, 1001, -1] {
            assert!(matches!(
                plan(ListRequest {
                    limit: Some(limit),
                    ..Default::default()
                }),
                Err(RowError::Query(_))
            ));
        }
        assert!(matches!(
            plan(ListRequest {
                offset: Some(-1),
                ..Default::default()
            }),
            Err(RowError::Query(_))
        ));
        assert!(matches!(
            plan(ListRequest {
                sort: Some("nope".into()),
                ..Default::default()
            }),
            Err(RowError::UnknownField(_))
        ));
        assert!(matches!(
            plan(ListRequest {
                sort: Some("meta".into()),
                ..Default::default()
            }),
            Err(RowError::Query(_))
        ));
        let cursor = Cursor {
            sort: "title".into(),
            keys: vec![Some("a".into())],
            id: "1".into(),
        }
        .encode();
        assert!(matches!(
            plan(ListRequest {
                cursor: Some(cursor.clone()),
                offset: Some(0),
                ..Default::default()
            }),
            Err(RowError::Query(_))
        ));
        assert!(matches!(
            plan(ListRequest {
                cursor: Some(cursor.clone()),
                sort: Some("-title".into()),
                ..Default::default()
            }),
            Err(RowError::Cursor(_))
        ));
        // The cursor carries its sort.
        let p = plan(ListRequest {
            cursor: Some(cursor),
            ..Default::default()
        })
        .expect("plan");
        assert!(
            p.rows.text.contains("ORDER BY t.\"title\" ASC"),
            "{}",
            p.rows.text
        );
        for bad in [
            "zz",
            "abc",
            "7b7d",
            &Cursor {
                sort: "id".into(),
                keys: vec![],
                id: "x".into(),
            }
            .encode(),
            &Cursor {
                sort: "title".into(),
                keys: vec![],
                id: "1".into(),
            }
            .encode(),
        ] {
            assert!(
                matches!(
                    plan(ListRequest {
                        cursor: Some(bad.to_string()),
                        ..Default::default()
                    }),
                    Err(RowError::Cursor(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn cursors_round_trip() {
        let c = Cursor {
            sort: "-title".into(),
            keys: vec![Some("it's \"quoted\" ünïcode".into()), None],
            id: "12".into(),
        };
        let s = c.encode();
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(Cursor::decode(&s).expect("decodes"), c);
    }

    #[test]
    fn writes_report_every_unknown_read_only_missing_and_bad_field() {
        let e = check_values(
            &todos(),
            &tables(),
            &json!({"id": 3, "priority": "high", "level": "mid", "nope/x": 1, "secret": ""}),
            WriteKind::Insert,
        )
        .expect_err("bad");
        assert!(matches!(e, RowError::Invalid(_)));
        assert_eq!(
            pointers_of(&e),
            [
                "/id",
                "/nope~1x",
                "/title",
                "/priority",
                "/secret",
                "/level"
            ]
        );
        // A patch needs no required field, but cannot null one.
        let e = check_values(
            &todos(),
            &tables(),
            &json!({"title": null}),
            WriteKind::Patch,
        )
        .expect_err("bad");
        assert_eq!(pointers_of(&e), ["/title"]);
        assert!(check_values(&todos(), &tables(), &json!({}), WriteKind::Patch).is_ok());
        assert!(check_values(&todos(), &tables(), &json!([1]), WriteKind::Patch).is_err());
    }

    #[test]
    fn writes_bind_checked_values_in_field_order() {
        let def = todos();
        let values = check_values(
            &def,
            &tables(),
            &json!({"priority": 2, "title": "x'); DROP TABLE todos; --", "owner": "0B3C2F1E-8D4A-4C7B-9E2F-1A2B3C4D5E6F"}),
            WriteKind::Insert,
        )
        .expect("valid");
        let sql = insert_sql(&def, &values);
        assert_eq!(
            sql.text,
            "INSERT INTO \"app\".\"todos\" AS t (\"title\", \"priority\", \"owner\") VALUES ($1::text, $2::bigint, $3::uuid) \
             RETURNING (to_jsonb(t.*) - ARRAY['secret']::text[])"
        );
        assert_eq!(sql.slots[0], t("x'); DROP TABLE todos; --"));
        let id = parse_id(&def, "9").expect("id");
        let sql = update_sql(&def, &id, &values[1..2]);
        assert_eq!(
            sql.text,
            "UPDATE \"app\".\"todos\" AS t SET \"priority\" = $1::bigint WHERE t.\"id\" = $2::bigint \
             RETURNING (to_jsonb(t.*) - ARRAY['secret']::text[])"
        );
        assert_eq!(sql.slots, [t("2"), t("9")]);
    }

    #[test]
    fn ids_are_checked_against_the_id_type() {
        let def = todos();
        assert!(parse_id(&def, "12").is_ok());
        for bad in ["abc", "1.5", "", "99999999999999999999", "1; DROP"] {
            assert!(
                matches!(parse_id(&def, bad), Err(RowError::InvalidId(_))),
                "{bad}"
            );
        }
        let people = &tables()["people"];
        assert!(parse_id(people, "0b3c2f1e-8d4a-4c7b-9e2f-1a2b3c4d5e6f").is_ok());
        assert!(parse_id(people, "12").is_err());
        let e = parse_ids(&def, &[json!(1), json!("2"), json!("x"), json!(1.5)]).expect_err("bad");
        assert_eq!(pointers_of(&e), ["/ids/2", "/ids/3"]);
        let ids = parse_ids(&def, &[json!(1), json!("2")]).expect("ids");
        let sql = delete_many_sql(&def, &ids);
        assert_eq!(
            sql.text,
            "DELETE FROM \"app\".\"todos\" AS t WHERE t.\"id\" = ANY($1::bigint[])"
        );
        assert_eq!(sql.slots, [Bind::Array(vec!["1".into(), "2".into()])]);
        assert!(matches!(
            parse_ids(&def, &vec![json!(1); MAX_BULK_IDS + 1]),
            Err(RowError::TooManyIds(_))
        ));
    }
}
