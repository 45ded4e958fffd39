//! A flow's `trigger`: what runs a flow that has no endpoint (FLOW-FORMAT.md, "Triggers").
//! Read from a document whose envelope schema has been checked, so only what the schema cannot
//! say is checked here: the cron expression, the time zone, the timeout of endpoints. PURE.

use super::diag::Diagnostic;
use chrono_tz::Tz;
use serde_json::Value;
use std::str::FromStr;

/// The longest run of a flow with an endpoint; flows with a trigger may take up to an hour.
pub const ENDPOINT_MAX_TIMEOUT_MS: u64 = 300_000;

/// What runs a flow besides an HTTP request.
#[derive(Debug, Clone)]
pub enum Trigger {
    Schedule(Box<Schedule>),
    Table(TableTrigger),
    /// Run when `job.enqueue` (or the admin API) enqueues it.
    Job,
}

impl Trigger {
    /// `schedule`, `table` or `job`, as written in the document.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Schedule(_) => "schedule",
            Trigger::Table(_) => "table",
            Trigger::Job => "job",
        }
    }
}

/// A `schedule` trigger: the cron expression read in `timezone`, and what to do with missed
/// and overlapping occurrences.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The expression as written (5 fields, or 6 with seconds first).
    pub cron: String,
    /// Parsed once here; the scheduler computes fire times from it.
    pub parsed: croner::Cron,
    pub timezone: Tz,
    pub catch_up: CatchUp,
    /// At most this many missed occurrences run with `catch_up: all`.
    pub catch_up_max: u32,
    /// An occurrence found later than this after its time is skipped (and recorded).
    pub max_lateness_ms: u64,
    pub overlap: Overlap,
}

/// Occurrences missed while no instance ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    Skip,
    Latest,
    All,
}

/// An occurrence that comes while the previous run is not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    Skip,
    Queue,
    Allow,
}

/// A `table` trigger: one run per changed row of `table`.
#[derive(Debug, Clone)]
pub struct TableTrigger {
    pub table: String,
    pub on_insert: bool,
    pub on_update: bool,
    pub on_delete: bool,
    /// Updates run the flow only when one of these changed; empty: any column.
    pub columns: Vec<String>,
    /// The condition in the filter language of `db.query`, as written (compiled by the events
    /// module against the table).
    pub when: Option<Value>,
}

/// Reads the document's `trigger`, if any, and checks the timeout against it.
pub fn trigger(doc: &Value, diags: &mut Vec<Diagnostic>) -> Option<Trigger> {
    let timeout = doc.pointer("/settings/timeout_ms").and_then(Value::as_u64);
    let t = doc.get("trigger");
    if t.is_none() && timeout.is_some_and(|ms| ms > ENDPOINT_MAX_TIMEOUT_MS) {
        diags.push(Diagnostic::new(
            "flow.bad_timeout",
            "/settings/timeout_ms",
            format!(
                "a flow without a trigger may run at most {ENDPOINT_MAX_TIMEOUT_MS} ms; only flows with a trigger may run up to an hour"
            ),
        ));
    }
    for key in ["retry", "concurrency"] {
        if t.is_none() && doc.pointer(&format!("/settings/{key}")).is_some() {
            diags.push(Diagnostic::new(
                "flow.trigger_only",
                format!("/settings/{key}"),
                format!("`settings.{key}` applies to flows with a trigger (jobs) only"),
            ));
        }
    }
    let t = t?;
    match t.get("kind").and_then(Value::as_str)? {
        "schedule" => schedule(t, diags).map(|s| Trigger::Schedule(Box::new(s))),
        "table" => Some(Trigger::Table(table(t))),
        "job" => Some(Trigger::Job),
        _ => None,
    }
}

fn schedule(t: &Value, diags: &mut Vec<Diagnostic>) -> Option<Schedule> {
    let cron_text = t.get("cron").and_then(Value::as_str)?;
    let parsed = match parse_cron(cron_text) {
        Ok(c) => Some(c),
        Err(msg) => {
            diags.push(Diagnostic::new("flow.bad_cron", "/trigger/cron", msg));
            None
        }
    };
    let tz_text = t.get("timezone").and_then(Value::as_str)?;
    let timezone = match parse_timezone(tz_text) {
        Ok(tz) => Some(tz),
        Err(msg) => {
            diags.push(Diagnostic::new(
                "flow.bad_timezone",
                "/trigger/timezone",
                msg,
            ));
            None
        }
    };
    let catch_up = match t.get("catch_up").and_then(Value::as_str) {
        Some("skip") => CatchUp::Skip,
        Some("all") => CatchUp::All,
        _ => CatchUp::Latest,
    };
    let overlap = match t.get("overlap").and_then(Value::as_str) {
        Some("queue") => Overlap::Queue,
        Some("allow") => Overlap::Allow,
        _ => Overlap::Skip,
    };
    Some(Schedule {
        cron: cron_text.to_string(),
        parsed: parsed?,
        timezone: timezone?,
        catch_up,
        catch_up_max: t
            .get("catch_up_max")
            .and_then(Value::as_u64)
            .map_or(10, |n| n.min(1000) as u32),
        max_lateness_ms: t
            .get("max_lateness_ms")
            .and_then(Value::as_u64)
            .unwrap_or(3_600_000),
        overlap,
    })
}

fn table(t: &Value) -> TableTrigger {
    let on = |op: &str| {
        t.get("on")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(op)))
    };
    TableTrigger {
        table: t
            .get("table")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        on_insert: on("insert"),
        on_update: on("update"),
        on_delete: on("delete"),
        columns: t
            .get("columns")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        when: t.get("when").cloned(),
    }
}

/// Checks a table trigger against the tables (`lookup` finds one by name): the table exists
/// and has events on, the columns are its columns, and `when` is a valid filter of it (as the
/// data API checks one).
pub fn check_table<'c>(
    t: &TableTrigger,
    lookup: &dyn Fn(&str) -> Option<&'c crate::tables::def::TableDef>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(def) = lookup(&t.table) else {
        diags.push(Diagnostic::new(
            "flow.unknown_table",
            "/trigger/table",
            format!("there is no table `{}`", t.table),
        ));
        return;
    };
    if !def.events {
        diags.push(Diagnostic::new(
            "flow.table_events_off",
            "/trigger/table",
            format!(
                "table `{}` does not send change events; turn on `events` in its definition",
                t.table
            ),
        ));
    }
    for (i, c) in t.columns.iter().enumerate() {
        if def.column_type(c).is_none() {
            diags.push(Diagnostic::new(
                "flow.unknown_column",
                format!("/trigger/columns/{i}"),
                format!("table `{}` has no column `{c}`", t.table),
            ));
        }
    }
    if let Some(when) = &t.when {
        // The table and the tables it references (their id types type the references).
        let tables: crate::tables::def::Tables = std::iter::once(def)
            .chain(
                def.fields
                    .iter()
                    .filter_map(|f| f.table.as_ref())
                    .filter_map(|r| lookup(r.as_str())),
            )
            .map(|d| (d.name.to_string(), d.clone()))
            .collect();
        if let Err(e) = crate::tables::rows::parse_filter(def, &tables, when) {
            for p in e.problems() {
                diags.push(Diagnostic::new(
                    "flow.bad_filter",
                    format!("/trigger/when{}", p.pointer.trim_start_matches("/filter")),
                    p.message.clone(),
                ));
            }
        }
    }
}

/// A standard cron expression: 5 fields, or 6 with seconds first. Croner also reads a seventh
/// (year) field and other extensions; a seventh field is refused so files stay portable.
pub fn parse_cron(text: &str) -> Result<croner::Cron, String> {
    let fields = text.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!(
            "a cron expression has 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first); this one has {fields}"
        ));
    }
    croner::Cron::from_str(text).map_err(|e| format!("not a valid cron expression: {e}"))
}

/// An IANA time zone name such as `Europe/Paris` or `UTC`.
pub fn parse_timezone(text: &str) -> Result<Tz, String> {
    Tz::from_str(text).map_err(|_| {
        format!(
            "`{text}` is not an IANA time zone name (such as Europe/Paris, America/New_York or UTC)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(doc: Value) -> (Option<Trigger>, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let t = trigger(&doc, &mut diags);
        (t, diags)
    }

    #[test]
    fn a_schedule_reads_its_policies_and_defaults() {
        let (t, d) = read(
            json!({"trigger": {"kind": "schedule", "cron": "0 8 * * 1-5",
            "timezone": "Europe/Paris", "catch_up": "all", "overlap": "queue"}}),
        );
        assert!(d.is_empty(), "{d:?}");
        let Some(Trigger::Schedule(s)) = t else {
            panic!("a schedule")
        };
        assert_eq!(s.timezone, chrono_tz::Europe::Paris);
        assert_eq!(s.catch_up, CatchUp::All);
        assert_eq!(s.overlap, Overlap::Queue);
        assert_eq!(s.catch_up_max, 10);
        assert_eq!(s.max_lateness_ms, 3_600_000);
    }

    #[test]
    fn bad_cron_and_timezone_point_at_their_fields() {
        let (t, d) = read(json!({"trigger": {"kind": "schedule", "cron": "61 * * * *",
            "timezone": "Mars/Olympus"}}));
        assert!(t.is_none());
        let at: Vec<(&str, &str)> = d.iter().map(|d| (d.code, d.pointer.as_str())).collect();
        assert_eq!(
            at,
            [
                ("flow.bad_cron", "/trigger/cron"),
                ("flow.bad_timezone", "/trigger/timezone")
            ]
        );
        let (_, d) = read(
            json!({"trigger": {"kind": "schedule", "cron": "0 0 8 * * * 2030",
            "timezone": "UTC"}}),
        );
        assert!(d[0].message.contains("this one has 7"), "{d:?}");
    }

    #[test]
    fn six_fields_have_seconds_first() {
        let c = parse_cron("*/5 * * * * *").expect("valid");
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:01Z").expect("a time");
        let next = c.find_next_occurrence(&t0, false).expect("a next time");
        assert_eq!(next.to_rfc3339(), "2026-01-01T00:00:05+00:00");
    }

    #[test]
    fn long_timeouts_retry_and_concurrency_need_a_trigger() {
        let (_, d) = read(json!({"settings": {"timeout_ms": 600000, "retry": {}}}));
        let codes: Vec<&str> = d.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["flow.bad_timeout", "flow.trigger_only"]);
        let (t, d) = read(
            json!({"trigger": {"kind": "job"}, "settings": {"timeout_ms": 600000,
            "retry": {"max_attempts": 3}, "concurrency": {"limit": 1}}}),
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(t.map(|t| t.kind()), Some("job"));
    }

    #[test]
    fn a_table_trigger_reads_its_operations_and_columns() {
        let (t, d) = read(json!({"trigger": {"kind": "table", "table": "orders",
            "on": ["insert", "update"], "columns": ["status"]}}));
        assert!(d.is_empty());
        let Some(Trigger::Table(t)) = t else {
            panic!("a table trigger")
        };
        assert!(t.on_insert && t.on_update && !t.on_delete);
        assert_eq!(t.columns, ["status"]);
    }
}
