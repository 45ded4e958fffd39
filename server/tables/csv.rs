//! CSV import and export of managed tables. Knows sqlx, not axum.
//!
//! Import streams: the body arrives in chunks that are pushed through `csv_core` into one
//! record at a time, each cell is checked and normalised with [`value::from_text`] for its
//! column, and valid rows are written into Postgres with `COPY ... FROM STDIN` (text format),
//! in batches of about 1 MiB, inside one transaction. Memory stays bounded by one record (at
//! most [`MAX_RECORD_BYTES`]) plus one batch, whatever the size of the file.
//!
//! Export streams `COPY (SELECT ...) TO STDOUT` in CSV format, with timestamps, dates and
//! booleans rendered the way import reads them back, so an export re-imports unchanged.

mod records;

use super::ddl::qualified;
use super::def::{FieldDef, SYSTEM_COLUMNS, TableDef, Tables};
use super::ident::{Ident, IdentError};
use super::store::{self, StoredTable, TableError};
use super::types::{FieldType, IdType};
use super::value::{self, ColumnSpec};
use futures_core::Stream;
use records::Source;
pub use records::{MAX_RECORD_BYTES, Next, Record, RecordReader};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnection, PgDatabaseError, PgPool, PgPoolCopyExt};
use std::collections::HashSet;
use std::fmt::Display;
use std::pin::Pin;
use std::task::{Context, Poll};

/// At most this many row errors are listed in a report; `rejected` keeps counting.
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// COPY data is sent to Postgres in pieces of about this size.
const COPY_BATCH_BYTES: usize = 1 << 20;

/// Export output is handed to the HTTP body in pieces of about this size (COPY sends a
/// message per row).
const EXPORT_CHUNK_BYTES: usize = 64 << 10;

/// The largest id an import may give a row explicitly: 2^62, half of the bigint range. An id
/// near 2^63 − 1 would move the table's id sequence to its end, and every later insert would
/// fail; this bound leaves 2^62 ids after the largest imported one (and admits any real
/// external id, such as 64-bit "snowflake" ids, which are far below it).
pub const MAX_IMPORTED_ID: i64 = 1 << 62;

/// What to do with a file that has invalid rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Any invalid row and nothing is written.
    #[default]
    All,
    /// Valid rows are written; invalid ones are reported.
    Valid,
}

/// One problem with one row (and one cell when `field` is set).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    /// Line of the file where the record starts (the header is line 1).
    pub row: u64,
    pub field: Option<String>,
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub imported: u64,
    /// Rows refused (a row with several bad cells counts once).
    pub rejected: u64,
    /// The first [`MAX_REPORTED_ERRORS`] problems, in file order.
    pub errors: Vec<RowError>,
}

impl Report {
    fn note(&mut self, row: u64, field: Option<&str>, message: String) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(RowError {
                row,
                field: field.map(str::to_string),
                message,
            });
        }
    }
}

/// Which kind of constraint refused a row during COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintKind {
    Unique,
    Reference,
    Required,
    Check,
}

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("the body is empty: send a header line naming the fields, then one line per row")]
    Empty,
    #[error(
        "line {line} belongs to a record longer than 1 MiB ({MAX_RECORD_BYTES} bytes); nothing was imported"
    )]
    LineTooLarge { line: u64 },
    #[error("{0}")]
    InvalidHeader(String),
    #[error("the header names columns the table does not have: {}", .unknown.join(", "))]
    UnknownColumns {
        unknown: Vec<String>,
        known: Vec<String>,
    },
    #[error("the header lacks required fields that have no default: {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    #[error(
        "{} row(s) are invalid, so nothing was imported; fix them, or send mode=valid to import the valid rows",
        .0.rejected
    )]
    InvalidRows(Report),
    #[error("{}; nothing was imported", constraint_message(*.kind, .field.as_deref()))]
    Constraint {
        kind: ConstraintKind,
        field: Option<String>,
        /// Line of the file, when Postgres said which row.
        row: Option<u64>,
        /// Postgres's detail (`Key (email)=(a@b.co) already exists.`) for unique and
        /// reference violations.
        detail: Option<String>,
    },
    #[error("the database refused a value: {message}; nothing was imported")]
    InvalidValue { row: Option<u64>, message: String },
    #[error("the request body could not be read: {0}")]
    Body(String),
    #[error("the table name is invalid: {0}")]
    TableName(IdentError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Every password hashing thread stayed busy.
    #[error("the server is busy; retry shortly")]
    Busy,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn constraint_message(kind: ConstraintKind, field: Option<&str>) -> String {
    let field = field.map_or_else(|| "a field".to_string(), |f| format!("field `{f}`"));
    match kind {
        ConstraintKind::Unique => format!(
            "{field} must be unique, and a value in the file is already in the table or appears twice"
        ),
        ConstraintKind::Reference => format!("{field} refers to a row that does not exist"),
        ConstraintKind::Required => format!("{field} needs a value"),
        ConstraintKind::Check => format!("a value of {field} is not allowed"),
    }
}

// ---------------------------------------------------------------------------------------------
// Header to columns, rows to COPY text.

/// A column the file fills, in header order.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: Ident,
    pub spec: ColumnSpec,
}

/// Refuses empty and repeated header names.
fn check_names(header: &[String]) -> Result<(), CsvError> {
    let mut seen = HashSet::new();
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            return Err(CsvError::InvalidHeader(format!(
                "column {} of the header has no name",
                i + 1
            )));
        }
        if !seen.insert(name.as_str()) {
            return Err(CsvError::InvalidHeader(format!(
                "column `{name}` appears twice in the header"
            )));
        }
    }
    Ok(())
}

/// The columns a header fills in `def`. Every name must be a column (fields, `id`,
/// `created_at`, `updated_at`); required fields without a default must be present.
pub fn columns_for(
    def: &TableDef,
    tables: &Tables,
    header: &[String],
) -> Result<Vec<Column>, CsvError> {
    check_names(header)?;
    let mut columns = Vec::with_capacity(header.len());
    let mut unknown = Vec::new();
    for name in header {
        match (def.column_spec(name, tables), Ident::parse(name)) {
            (Some(mut spec), Ok(name)) => {
                // System columns are NOT NULL; an empty cell would fail inside COPY.
                if SYSTEM_COLUMNS.contains(&name.as_str()) {
                    spec.required = true;
                }
                columns.push(Column { name, spec });
            }
            _ => unknown.push(name.clone()),
        }
    }
    if !unknown.is_empty() {
        let known = SYSTEM_COLUMNS
            .iter()
            .map(|s| s.to_string())
            .chain(def.fields.iter().map(|f| f.name.to_string()))
            .collect();
        return Err(CsvError::UnknownColumns { unknown, known });
    }
    let missing: Vec<String> = def
        .must_be_given()
        .filter(|f| !header.iter().any(|h| h == f.name.as_str()))
        .map(|f| f.name.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(CsvError::MissingColumns(missing));
    }
    Ok(columns)
}

/// The definition of a new table made from a header: every column a nullable text field,
/// except `id`, `created_at` and `updated_at`, which fill the system columns.
pub fn def_from_header(name: Ident, header: &[String]) -> Result<TableDef, CsvError> {
    check_names(header)?;
    let mut fields = Vec::new();
    for (i, h) in header.iter().enumerate() {
        if SYSTEM_COLUMNS.contains(&h.as_str()) {
            continue;
        }
        let ident = Ident::parse(h).map_err(|e| {
            CsvError::InvalidHeader(format!(
                "column {} of the header is not a valid field name: {e}",
                i + 1
            ))
        })?;
        fields.push(FieldDef {
            id: String::new(),
            name: ident,
            ty: FieldType::Text,
            required: false,
            unique: false,
            indexed: false,
            default: None,
            description: None,
            precision: None,
            scale: None,
            values: Vec::new(),
            table: None,
            on_delete: None,
        });
    }
    Ok(TableDef {
        id: String::new(),
        name,
        description: None,
        id_type: IdType::Bigint,
        fields,
        indexes: Vec::new(),
        events: false,
        rules: None,
        version: None,
    })
}

/// Checks a record against the columns. On success `values` holds one normalised value per
/// column (`None` is NULL); otherwise every problem is noted in `report`.
pub fn check_row(
    columns: &[Column],
    rec: &Record<'_>,
    values: &mut Vec<Option<String>>,
    report: &mut Report,
) -> bool {
    values.clear();
    if rec.len() != columns.len() {
        report.note(
            rec.line(),
            None,
            format!("expected {} values, found {}", columns.len(), rec.len()),
        );
        return false;
    }
    let mut ok = true;
    for (i, col) in columns.iter().enumerate() {
        let checked = std::str::from_utf8(rec.field(i))
            .map_err(|_| "is not valid UTF-8 (send the file as UTF-8)".to_string())
            .and_then(|s| value::from_text(&col.spec, s))
            .and_then(|v| check_id(col, v));
        match checked {
            Ok(v) => values.push(v),
            Err(message) => {
                ok = false;
                report.note(rec.line(), Some(col.name.as_str()), message);
            }
        }
    }
    ok
}

/// Refuses an explicit bigint id above [`MAX_IMPORTED_ID`] (or below 1).
fn check_id(col: &Column, v: Option<String>) -> Result<Option<String>, String> {
    if col.name.as_str() != "id" || col.spec.ty != FieldType::Integer {
        return Ok(v);
    }
    match v.as_deref().map(str::parse::<i64>) {
        Some(Ok(n)) if !(1..=MAX_IMPORTED_ID).contains(&n) => Err(format!(
            "an id must be between 1 and {MAX_IMPORTED_ID}, so that the table keeps ids for new rows"
        )),
        _ => Ok(v),
    }
}

/// Appends one row in COPY text format: tab-separated, `\N` for NULL, backslash escapes.
pub fn encode_row(values: &[Option<String>], buf: &mut Vec<u8>) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            buf.push(b'\t');
        }
        match v {
            None => buf.extend_from_slice(b"\\N"),
            Some(s) => escape_copy_text(s.as_bytes(), buf),
        }
    }
    buf.push(b'\n');
}

fn escape_copy_text(s: &[u8], buf: &mut Vec<u8>) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        buf.extend_from_slice(&s[start..i]);
        buf.extend_from_slice(esc);
        start = i + 1;
    }
    buf.extend_from_slice(&s[start..]);
}

/// Maps COPY's line numbers (one per row sent) back to lines of the file, keeping only the
/// places where the distance between the two changes (rejected rows, multi-line records).
#[derive(Debug, Default)]
struct LineMap {
    /// `(first COPY line, file line minus COPY line)`.
    steps: Vec<(u64, u64)>,
}

impl LineMap {
    fn push(&mut self, copy_line: u64, file_line: u64) {
        let d = file_line.saturating_sub(copy_line);
        if self.steps.last().map(|s| s.1) != Some(d) {
            self.steps.push((copy_line, d));
        }
    }

    fn file_line(&self, copy_line: u64) -> Option<u64> {
        let i = self.steps.partition_point(|s| s.0 <= copy_line);
        i.checked_sub(1).map(|i| copy_line + self.steps[i].1)
    }
}

// ---------------------------------------------------------------------------------------------
// Import.

/// Imports a CSV file into an existing table. The header is read before any row, the
/// definition is locked (`FOR UPDATE`) for the import so a schema change waits, and all rows
/// go in one transaction: with [`Mode::All`] any invalid row means nothing is written
/// ([`CsvError::InvalidRows`]).
pub async fn import<S, B, E>(
    pool: &PgPool,
    table: &str,
    body: S,
    mode: Mode,
) -> Result<Report, CsvError>
where
    S: Stream<Item = Result<B, E>> + Unpin + Send,
    B: AsRef<[u8]> + Send,
    E: Display,
{
    store::get(pool, table).await?;
    let mut src = Source::new(body);
    let header = src.header().await?;
    let mut tx = pool.begin().await?;
    let def = store::get_for_update(&mut tx, table).await?.def;
    let tables = store::all_in(&mut tx).await?;
    let columns = columns_for(&def, &tables, &header)?;
    if def.id_type == IdType::Bigint {
        repair_identity(&mut tx, &def).await?;
    }
    let report = copy_rows(&mut tx, &def, &columns, &mut src, mode).await?;
    tx.commit().await?;
    Ok(report)
}

/// Creates a table from the header (see [`def_from_header`]) and imports the rows, in one
/// transaction: when the import fails, the table is not created either.
pub async fn import_new<S, B, E>(
    pool: &PgPool,
    name: &str,
    body: S,
    mode: Mode,
    user_id: i64,
) -> Result<(StoredTable, Report), CsvError>
where
    S: Stream<Item = Result<B, E>> + Unpin + Send,
    B: AsRef<[u8]> + Send,
    E: Display,
{
    let name = Ident::parse(name).map_err(CsvError::TableName)?;
    let mut src = Source::new(body);
    let header = src.header().await?;
    let def = def_from_header(name, &header)?;
    let mut tx = pool.begin().await?;
    let (table, _) = super::store::create_in(&mut tx, def, user_id).await?;
    let columns = columns_for(&table.def, &Tables::new(), &header)?;
    let report = copy_rows(&mut tx, &table.def, &columns, &mut src, mode).await?;
    tx.commit().await?;
    Ok((table, report))
}

/// Streams the remaining records into `COPY`. Always ends the COPY with `finish` (never
/// `abort`, which leaves the connection out of step when Postgres has already refused a row);
/// on failure the caller drops its transaction, so the rows are rolled back.
async fn copy_rows<S, B, E>(
    conn: &mut PgConnection,
    def: &TableDef,
    columns: &[Column],
    src: &mut Source<S, B>,
    mode: Mode,
) -> Result<Report, CsvError>
where
    S: Stream<Item = Result<B, E>> + Unpin + Send,
    B: AsRef<[u8]> + Send,
    E: Display,
{
    let names: Vec<String> = columns.iter().map(|c| c.name.quoted()).collect();
    let statement = format!(
        "COPY {} ({}) FROM STDIN",
        qualified(&def.name),
        names.join(", ")
    );
    let mut copy = conn.copy_in_raw(&statement).await?;
    let passwords: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i].spec.ty == FieldType::Password)
        .collect();
    let mut report = Report::default();
    let mut lines = LineMap::default();
    let mut buf: Vec<u8> = Vec::with_capacity(COPY_BATCH_BYTES + (64 << 10));
    let mut values: Vec<Option<String>> = Vec::with_capacity(columns.len());
    let mut sent: u64 = 0;
    let fed: Result<(), CsvError> = async {
        while src.next_record().await? {
            let line = {
                let rec = src.record();
                if !check_row(columns, &rec, &mut values, &mut report) {
                    report.rejected += 1;
                    continue;
                }
                rec.line()
            };
            if mode == Mode::All && report.rejected > 0 {
                // Nothing will be written; keep reading only to report every bad row.
                continue;
            }
            for &i in &passwords {
                values[i] = value::for_storage(FieldType::Password, values[i].take())
                    .await
                    .map_err(|e| match e {
                        value::StoreError::Busy => CsvError::Busy,
                        value::StoreError::Hash(e) => CsvError::Hash(e),
                    })?;
            }
            encode_row(&values, &mut buf);
            sent += 1;
            lines.push(sent, line);
            if buf.len() >= COPY_BATCH_BYTES {
                copy.send(buf.as_slice()).await?;
                buf.clear();
            }
        }
        let refused = mode == Mode::All && report.rejected > 0;
        if !refused && !buf.is_empty() {
            copy.send(buf.as_slice()).await?;
        }
        Ok(())
    }
    .await;
    let refused = mode == Mode::All && report.rejected > 0;
    if let Err(e) = fed {
        let _ = copy.finish().await;
        return Err(e);
    }
    if refused {
        let _ = copy.finish().await;
        return Err(CsvError::InvalidRows(report));
    }
    report.imported = copy
        .finish()
        .await
        .map_err(|e| copy_error(e, def, &lines))?;
    if def.id_type == IdType::Bigint && columns.iter().any(|c| c.name.as_str() == "id") {
        advance_identity(conn, def).await?;
    }
    Ok(report)
}

/// Moves the id sequence of a table back from beyond [`MAX_IMPORTED_ID`] (where an import of
/// an id near 2^63 − 1 left it before that bound existed, and where every insert soon fails)
/// to the largest id, when that id is within the bound. Any import into the table runs it, a
/// header line alone is enough.
async fn repair_identity(conn: &mut PgConnection, def: &TableDef) -> Result<(), sqlx::Error> {
    let table = qualified(&def.name);
    sqlx::query(&format!(
        "SELECT setval(s, COALESCE(m, 1), m IS NOT NULL) FROM (SELECT \
         pg_get_serial_sequence($1, 'id')::regclass AS s, \
         (SELECT max(\"id\") FROM {table}) AS m) x \
         WHERE pg_sequence_last_value(s) > $2 AND COALESCE(m, 0) <= $2"
    ))
    .bind(&table)
    .bind(MAX_IMPORTED_ID)
    .persistent(false)
    .execute(conn)
    .await?;
    Ok(())
}

/// After rows with explicit ids, moves the id sequence past the largest id (never back), so
/// later inserts do not collide.
async fn advance_identity(conn: &mut PgConnection, def: &TableDef) -> Result<(), sqlx::Error> {
    let table = qualified(&def.name);
    sqlx::query(&format!(
        "SELECT setval(s, m) FROM (SELECT pg_get_serial_sequence($1, 'id')::regclass AS s, \
         (SELECT max(\"id\") FROM {table}) AS m) x \
         WHERE m IS NOT NULL AND m > COALESCE(pg_sequence_last_value(s), 0)"
    ))
    .bind(&table)
    .persistent(false)
    .execute(conn)
    .await?;
    Ok(())
}

/// Turns what Postgres said at the end of COPY into an error naming the field and, when
/// Postgres says which row, the line of the file. Only Postgres's message and detail for
/// data errors are passed on; its context (which may quote SQL) never is.
fn copy_error(e: sqlx::Error, def: &TableDef, lines: &LineMap) -> CsvError {
    let sqlx::Error::Database(db) = &e else {
        return CsvError::Db(e);
    };
    let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() else {
        return CsvError::Db(e);
    };
    let row = pg
        .r#where()
        .and_then(copy_line)
        .and_then(|n| lines.file_line(n));
    let kind = match pg.code() {
        "23505" => ConstraintKind::Unique,
        "23503" => ConstraintKind::Reference,
        "23502" => ConstraintKind::Required,
        "23514" => ConstraintKind::Check,
        // The id sequence is used up (and could not be repaired): its message names the
        // sequence, and it is not the file's fault.
        "2200H" => return CsvError::Db(e),
        code if code.starts_with("22") => {
            return CsvError::InvalidValue {
                row,
                message: pg.message().to_string(),
            };
        }
        _ => return CsvError::Db(e),
    };
    let field = match kind {
        ConstraintKind::Required => pg.column().map(str::to_string),
        _ => pg.constraint().and_then(|c| constraint_field(def, c)),
    };
    let detail = matches!(kind, ConstraintKind::Unique | ConstraintKind::Reference)
        .then(|| pg.detail().map(str::to_string))
        .flatten();
    CsvError::Constraint {
        kind,
        field,
        row,
        detail,
    }
}

/// The row number in a COPY error context (`COPY people, line 3[, column ...]`).
fn copy_line(context: &str) -> Option<u64> {
    let first = context.lines().next()?;
    if !first.starts_with("COPY ") {
        return None;
    }
    let rest = &first[first.find(", line ")? + ", line ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The field(s) behind a constraint or index name: `<table id>_<field or index id>_<suffix>`,
/// or `<table>_pkey` for the id.
pub fn constraint_field(def: &TableDef, constraint: &str) -> Option<String> {
    if constraint.ends_with("_pkey") {
        return Some("id".into());
    }
    let rest = constraint
        .strip_prefix(def.id.as_str())?
        .strip_prefix('_')?;
    let (id, _) = rest.rsplit_once('_')?;
    def.fields
        .iter()
        .find(|f| f.id == id)
        .map(|f| f.name.to_string())
        .or_else(|| {
            def.indexes.iter().find(|ix| ix.id == id).map(|ix| {
                ix.fields
                    .iter()
                    .map(Ident::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        })
}

// ---------------------------------------------------------------------------------------------
// Export.

/// What an export does with text cells a spreadsheet would run as a formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Formulas {
    /// A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a `'`
    /// in front, so Excel, LibreOffice and Google Sheets show it as text instead of running
    /// it (CSV injection).
    #[default]
    Escape,
    /// Cells exactly as stored, for a file that re-imports unchanged.
    Keep,
}

/// `COPY (SELECT ...) TO STDOUT` of a table in CSV with a header: `id`, `created_at`,
/// `updated_at`, then every field but passwords, ordered by id. NULL is an empty cell, empty
/// text is `""`; timestamps are UTC (`2026-01-31T12:00:00.5Z`), dates `YYYY-MM-DD`, booleans
/// `true`/`false`, JSON as JSON text: the forms import reads. Text, email and enum cells are
/// escaped as `formulas` says (numbers, dates, JSON never start a formula: a leading `-` there
/// is a sign).
pub fn export_sql(def: &TableDef, formulas: Formulas) -> String {
    let mut cols = vec!["\"id\"".to_string()];
    for name in ["created_at", "updated_at"] {
        if let Ok(ident) = Ident::parse(name) {
            cols.push(export_expr(&ident, FieldType::Timestamp, formulas));
        }
    }
    cols.extend(
        def.fields
            .iter()
            .filter(|f| f.ty != FieldType::Password)
            .map(|f| export_expr(&f.name, f.ty, formulas)),
    );
    format!(
        "COPY (SELECT {} FROM {} ORDER BY \"id\") TO STDOUT WITH (FORMAT csv, HEADER true)",
        cols.join(", "),
        qualified(&def.name)
    )
}

fn export_expr(name: &Ident, ty: FieldType, formulas: Formulas) -> String {
    let q = name.quoted();
    match ty {
        FieldType::Text | FieldType::Email | FieldType::Enum if formulas == Formulas::Escape => {
            format!(
                "CASE WHEN left({q}::text, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') \
                 THEN '''' || {q}::text ELSE {q}::text END AS {q}"
            )
        }
        // Microseconds with trailing zeros (and a bare point) trimmed, then `Z`.
        FieldType::Timestamp => format!(
            "rtrim(rtrim(to_char({q} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '0'), '.') || 'Z' AS {q}"
        ),
        FieldType::Date => format!("to_char({q}, 'YYYY-MM-DD') AS {q}"),
        FieldType::Boolean => {
            format!("CASE WHEN {q} THEN 'true' WHEN NOT {q} THEN 'false' END AS {q}")
        }
        _ => q,
    }
}

/// Streams a table as CSV (see [`export_sql`]), never holding more than a chunk of it.
pub async fn export(
    pool: &PgPool,
    table: &str,
    formulas: Formulas,
) -> Result<impl Stream<Item = Result<Vec<u8>, sqlx::Error>> + Send + Unpin + 'static, CsvError> {
    let def = store::get(pool, table).await?.def;
    let inner = pool.copy_out_raw(&export_sql(&def, formulas)).await?;
    Ok(Batched {
        inner,
        buf: Vec::new(),
        done: false,
    })
}

/// Gathers COPY's one-row messages into pieces of about [`EXPORT_CHUNK_BYTES`].
struct Batched<S> {
    inner: S,
    buf: Vec<u8>,
    done: bool,
}

impl<S, B> Stream for Batched<S>
where
    S: Stream<Item = Result<B, sqlx::Error>> + Unpin,
    B: AsRef<[u8]>,
{
    type Item = Result<Vec<u8>, sqlx::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(
                    (!this.buf.is_empty()).then(|| Ok(std::mem::take(&mut this.buf))),
                );
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(piece))) => {
                    if this.buf.capacity() == 0 {
                        this.buf.reserve(EXPORT_CHUNK_BYTES + 1024);
                    }
                    this.buf.extend_from_slice(piece.as_ref());
                    if this.buf.len() >= EXPORT_CHUNK_BYTES {
                        return Poll::Ready(Some(Ok(std::mem::take(&mut this.buf))));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(error = %e, "CSV export failed midway; the response is cut short");
                    this.done = true;
                    this.buf.clear();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => this.done = true,
                Poll::Pending if this.buf.is_empty() => return Poll::Pending,
                Poll::Pending => return Poll::Ready(Some(Ok(std::mem::take(&mut this.buf)))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::records::testing::*;
    use super::*;
    use std::collections::VecDeque;

    fn table() -> TableDef {
        serde_json::from_value(serde_json::json!({
            "id": "t_000000000001", "name": "people",
            "fields": [
                {"id": "f_00000000000a", "name": "name", "type": "text", "required": true},
                {"id": "f_00000000000b", "name": "age", "type": "integer"},
                {"id": "f_00000000000c", "name": "email", "type": "email", "unique": true},
                {"id": "f_00000000000d", "name": "level", "type": "text", "required": true, "default": "low"},
                {"id": "f_00000000000e", "name": "secret", "type": "password"}
            ],
            "indexes": [{"id": "i_00000000000f", "fields": ["name", "age"], "unique": true}]
        }))
        .expect("a table")
    }

    #[test]
    fn the_header_must_name_known_columns_once_and_every_required_field() {
        let def = table();
        let t = Tables::new();
        let cols = columns_for(&def, &t, &strings(&["age", "name", "id"])).expect("fits");
        assert_eq!(
            cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["age", "name", "id"]
        );
        assert!(cols[2].spec.required, "system columns take no NULL");
        match columns_for(&def, &t, &strings(&["name", "nope", "Age"])) {
            Err(CsvError::UnknownColumns { unknown, known }) => {
                assert_eq!(unknown, ["nope", "Age"]);
                assert!(known.contains(&"age".to_string()));
            }
            other => panic!("{other:?}"),
        }
        match columns_for(&def, &t, &strings(&["age"])) {
            Err(CsvError::MissingColumns(m)) => assert_eq!(m, ["name"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            columns_for(&def, &t, &strings(&["name", "name"])),
            Err(CsvError::InvalidHeader(_))
        ));
        assert!(matches!(
            columns_for(&def, &t, &strings(&["name", ""])),
            Err(CsvError::InvalidHeader(_))
        ));
    }

    #[test]
    fn a_new_table_gets_a_text_field_per_header_column_but_system_columns() {
        let name = Ident::parse("imported").expect("ident");
        let def = def_from_header(name.clone(), &strings(&["id", "title", "n2"])).expect("ok");
        assert_eq!(
            def.fields
                .iter()
                .map(|f| (f.name.as_str(), f.ty))
                .collect::<Vec<_>>(),
            [("title", FieldType::Text), ("n2", FieldType::Text)]
        );
        match def_from_header(name, &strings(&["title", "Bad Name"])) {
            Err(CsvError::InvalidHeader(m)) => assert!(m.contains("column 2"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn rows_are_checked_cell_by_cell_with_wrong_counts_and_bad_utf8_reported() {
        let def = table();
        let cols =
            columns_for(&def, &Tables::new(), &strings(&["name", "age", "email"])).expect("fits");
        let data = b"Ann,41,ann@example.com\nBob,old,bob\nCy,3\nD\xFFn,,\n";
        let mut src = Source::new(chunked(data, 7));
        let mut report = Report::default();
        let mut values = Vec::new();
        let mut good = Vec::new();
        while src.next_record().await.expect("reads") {
            let rec = src.record();
            if check_row(&cols, &rec, &mut values, &mut report) {
                good.push(values.clone());
            }
        }
        assert_eq!(
            good,
            vec![vec![
                Some("Ann".to_string()),
                Some("41".to_string()),
                Some("ann@example.com".to_string())
            ]]
        );
        let got: Vec<(u64, Option<&str>)> = report
            .errors
            .iter()
            .map(|e| (e.row, e.field.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (2, Some("age")),
                (2, Some("email")),
                (3, None),
                (4, Some("name"))
            ]
        );
        assert_eq!(report.errors[2].message, "expected 3 values, found 2");
        assert!(report.errors[3].message.contains("UTF-8"));
    }

    #[test]
    fn the_error_list_is_capped_but_notes_keep_coming() {
        let mut r = Report::default();
        for i in 0..(MAX_REPORTED_ERRORS as u64 + 5) {
            r.note(i, None, "x".into());
        }
        assert_eq!(r.errors.len(), MAX_REPORTED_ERRORS);
    }

    #[test]
    fn copy_text_escapes_backslashes_tabs_and_line_breaks_and_marks_null() {
        let mut buf = Vec::new();
        encode_row(
            &[
                Some("a\tb\\c\nd\re".into()),
                None,
                Some(String::new()),
                Some("\\N".into()),
                Some("\\.".into()),
                Some("'; DROP TABLE x; --".into()),
            ],
            &mut buf,
        );
        assert_eq!(
            String::from_utf8(buf).expect("utf8"),
            "a\\tb\\\\c\\nd\\re\t\\N\t\t\\\\N\t\\\\.\t'; DROP TABLE x; --\n"
        );
    }

    #[test]
    fn copy_lines_map_back_to_file_lines() {
        let mut m = LineMap::default();
        // Rows on lines 2, 3, (4 rejected), 5, 6-7 (two lines), 8.
        for (copy, file) in [(1, 2), (2, 3), (3, 5), (4, 6), (5, 8)] {
            m.push(copy, file);
        }
        assert_eq!(m.steps.len(), 3);
        assert_eq!(
            (1..=5).map(|c| m.file_line(c)).collect::<Vec<_>>(),
            [Some(2), Some(3), Some(5), Some(6), Some(8)]
        );
        assert_eq!(
            copy_line("COPY people, line 17, column age: \"x\""),
            Some(17)
        );
        assert_eq!(copy_line("COPY people, line 3"), Some(3));
        assert_eq!(copy_line("SQL statement \"SELECT 1, line 4\""), None);
    }

    #[test]
    fn constraint_names_lead_back_to_fields() {
        let def = table();
        assert_eq!(
            constraint_field(&def, "t_000000000001_f_00000000000c_key").as_deref(),
            Some("email")
        );
        assert_eq!(
            constraint_field(&def, "t_000000000001_i_00000000000f_idx").as_deref(),
            Some("name, age")
        );
        assert_eq!(constraint_field(&def, "people_pkey").as_deref(), Some("id"));
        assert_eq!(constraint_field(&def, "other_thing"), None);
    }

    #[test]
    fn export_selects_system_columns_and_fields_but_never_passwords() {
        let sql = export_sql(&table(), Formulas::Keep);
        assert!(sql.starts_with("COPY (SELECT \"id\", rtrim(rtrim(to_char(\"created_at\""));
        assert!(sql.contains("\"name\", \"age\", \"email\", \"level\" FROM \"app\".\"people\""));
        assert!(!sql.contains("secret"));
        assert!(sql.ends_with("ORDER BY \"id\") TO STDOUT WITH (FORMAT csv, HEADER true)"));
    }

    #[tokio::test]
    async fn export_pieces_are_gathered_into_larger_chunks() {
        let rows: VecDeque<Vec<u8>> = (0..10_000)
            .map(|i| format!("{i},x\n").into_bytes())
            .collect();
        let total: usize = rows.iter().map(Vec::len).sum();
        struct Rows(VecDeque<Vec<u8>>);
        impl Stream for Rows {
            type Item = Result<Vec<u8>, sqlx::Error>;
            fn poll_next(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Self::Item>> {
                Poll::Ready(self.0.pop_front().map(Ok))
            }
        }
        let mut b = Batched {
            inner: Rows(rows),
            buf: Vec::new(),
            done: false,
        };
        let mut sizes = Vec::new();
        while let Some(piece) = std::future::poll_fn(|cx| Pin::new(&mut b).poll_next(cx)).await {
            sizes.push(piece.expect("ok").len());
        }
        assert_eq!(sizes.iter().sum::<usize>(), total);
        assert!(sizes.len() < 5, "{sizes:?}");
    }
}
