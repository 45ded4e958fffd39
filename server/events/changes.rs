//! Table events (docs/EVENTS.md, "Table events"): the dispatcher that turns the change log
//! (`sluice.changes`, written by the row trigger of every table with events on, migration
//! 0015) into one job per change and matching published flow with a `table` trigger.
//!
//! Order: the log is read in `(xid, id)` order, and only rows whose transaction id is below the
//! xmin of the reading statement's snapshot. Every transaction below xmin has ended, so those
//! rows are visible, final, and no row can ever join them; a row written by a transaction that
//! is still open has an xid at or above xmin and waits for a later round. The cursor
//! (`sluice.change_cursor`) is the last `(xid, id)` dispatched: any row that becomes final later
//! has an xid at or above the xmin of the round that set the cursor, so it sorts after it. Hence
//! a transaction that commits late is never skipped, and nothing is dispatched twice: the
//! cursor moves in the same transaction as the jobs it made.
//!
//! One instance dispatches at a time (a transaction-scoped advisory lock). A table trigger's
//! `when` is compiled once per published flow (when what is served changes) into a predicate
//! over the row, never per change.

use crate::flow::trigger::{TableTrigger, Trigger};
use crate::queue::{self, NewJob};
use crate::serving::{Routes, Serving};
use crate::tables::def::{TableDef, Tables};
use crate::tables::query::FilterOp;
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The channel the row trigger notifies at each change.
pub const CHANNEL: &str = "sluice_changes";

/// Key of the advisory lock held by the instance that dispatches.
const DISPATCH_LOCK: i64 = 0x0051_1ce7_c4a6;

/// Changes read per round (one transaction).
const BATCH: i64 = 500;

/// One row of the change log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Change {
    pub id: i64,
    /// The writing transaction's id (`xid8`, as text).
    pub xid: String,
    pub table_name: String,
    pub op: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub changed: Vec<String>,
}

impl Change {
    /// What the flow gets as its input.
    pub fn event(&self) -> Value {
        json!({"event": {
            "op": self.op,
            "table": self.table_name,
            "old": self.old,
            "new": self.new,
            "changed": self.changed,
        }})
    }
}

/// A published flow with a table trigger, ready to match changes.
#[derive(Debug, Clone)]
pub struct Listener {
    pub flow: String,
    pub trigger: TableTrigger,
    pub when: Option<Predicate>,
}

impl Listener {
    /// Whether `change` runs this flow.
    pub fn matches(&self, change: &Change) -> bool {
        let t = &self.trigger;
        if change.table_name != t.table {
            return false;
        }
        let on = match change.op.as_str() {
            "insert" => t.on_insert,
            "update" => t.on_update,
            "delete" => t.on_delete,
            _ => false,
        };
        if !on {
            return false;
        }
        if change.op == "update"
            && !t.columns.is_empty()
            && !t.columns.iter().any(|c| change.changed.contains(c))
        {
            return false;
        }
        let row = if change.op == "delete" {
            &change.old
        } else {
            &change.new
        };
        match (&self.when, row) {
            (None, _) => true,
            (Some(p), Some(Value::Object(row))) => p.eval(row),
            (Some(_), _) => false,
        }
    }
}

/// The listeners of the published flows: every flow with a table trigger whose table exists
/// and whose `when` compiles. A flow that does not is logged and gets no jobs.
pub fn listeners<'p>(
    plans: impl Iterator<Item = &'p crate::engine::Plan>,
    tables: &Tables,
) -> Vec<Listener> {
    let mut out = Vec::new();
    for plan in plans {
        let Some(Trigger::Table(t)) = &plan.trigger else {
            continue;
        };
        let Some(def) = tables.get(&t.table) else {
            tracing::error!(flow = %plan.name, table = %t.table, "a table trigger names a table that does not exist; the flow gets no events");
            continue;
        };
        let when = match &t.when {
            None => None,
            Some(doc) => match Predicate::compile(doc, def, tables) {
                Ok(p) => Some(p),
                Err(problem) => {
                    tracing::error!(flow = %plan.name, %problem, "a table trigger's `when` does not compile; the flow gets no events");
                    continue;
                }
            },
        };
        out.push(Listener {
            flow: plan.name.clone(),
            trigger: t.clone(),
            when,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// `when`: the filter language of db.query, evaluated over the changed row

/// A compiled `when`: the grammar and operators of `db.query` filters with literal values,
/// checked against the table like a data API filter, evaluated in memory.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    And(Vec<Predicate>),
    Or(Vec<Predicate>),
    Cond {
        column: String,
        op: FilterOp,
        value: Value,
    },
}

impl Predicate {
    /// Checks `doc` against `def` (unknown fields, password fields, operators and values of
    /// the wrong type are refused, as in the data API) and compiles it.
    pub fn compile(doc: &Value, def: &TableDef, tables: &Tables) -> Result<Predicate, String> {
        crate::tables::rows::parse_filter(def, tables, doc).map_err(|e| {
            e.problems()
                .iter()
                .map(|p| format!("{}: {}", p.pointer, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        Self::build(doc).ok_or_else(|| "the condition has an unexpected shape".to_string())
    }

    fn build(doc: &Value) -> Option<Predicate> {
        let m = doc.as_object()?;
        if let Some(items) = m.get("and") {
            return Some(Predicate::And(
                items
                    .as_array()?
                    .iter()
                    .map(Self::build)
                    .collect::<Option<_>>()?,
            ));
        }
        if let Some(items) = m.get("or") {
            return Some(Predicate::Or(
                items
                    .as_array()?
                    .iter()
                    .map(Self::build)
                    .collect::<Option<_>>()?,
            ));
        }
        let op_name = m.get("op")?.as_str()?;
        let op = FilterOp::ALL
            .iter()
            .find(|(n, _)| *n == op_name)
            .map(|(_, op)| *op)?;
        Some(Predicate::Cond {
            column: m.get("field")?.as_str()?.to_string(),
            op,
            value: m.get("value")?.clone(),
        })
    }

    /// Whether `row` (the row as `to_jsonb` writes it) satisfies the condition.
    pub fn eval(&self, row: &Map<String, Value>) -> bool {
        match self {
            Predicate::And(items) => items.iter().all(|p| p.eval(row)),
            Predicate::Or(items) => items.iter().any(|p| p.eval(row)),
            Predicate::Cond { column, op, value } => {
                crate::tables::matching::holds(row.get(column).unwrap_or(&Value::Null), *op, value)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatching

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Changes read and passed (the cursor moved past them).
    pub changes: usize,
    /// Jobs enqueued (a change already dispatched adds none: its unique key exists).
    pub jobs: usize,
    /// Another instance held the dispatch lock: nothing was read.
    pub busy: bool,
}

/// One round in one transaction: reads up to [`BATCH`] final changes after the cursor,
/// enqueues a job per change and matching listener, and moves the cursor past them.
///
/// With `keys` (the runtime and the generation served), each job gets its flow's concurrency
/// key, computed from the job's input as `job.enqueue` computes it. A key expression that fails
/// is logged and leaves the job in the group without a key, which the flow's limit still
/// bounds.
pub async fn dispatch_once(
    db: &PgPool,
    listeners: &[Listener],
    keys: Option<(&crate::engine::Runtime, &crate::engine::Live)>,
) -> Result<Round, sqlx::Error> {
    let mut tx = db.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(DISPATCH_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(Round {
            busy: true,
            ..Round::default()
        });
    }
    let (last_xid, last_id): (String, i64) =
        sqlx::query_as("SELECT last_xid::text, last_id FROM sluice.change_cursor WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    // One statement: the rows it sees and the xmin it compares with come from one snapshot.
    let changes: Vec<Change> = sqlx::query_as(
        "SELECT id, xid::text AS xid, table_name, op, old, new, changed FROM sluice.changes \
         WHERE xid < pg_snapshot_xmin(pg_current_snapshot()) \
           AND (xid, id) > ($1::text::xid8, $2) \
         ORDER BY xid, id LIMIT $3",
    )
    .bind(&last_xid)
    .bind(last_id)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let Some(last) = changes.last() else {
        return Ok(Round::default());
    };
    let mut round = Round {
        changes: changes.len(),
        ..Round::default()
    };
    for change in &changes {
        for l in listeners.iter().filter(|l| l.matches(change)) {
            let mut job = NewJob::new(
                l.flow.clone(),
                change.event(),
                json!({"kind": "table", "change": change.id}),
            );
            job.unique_key = Some(format!("change:{}:{}", change.id, l.flow));
            if let Some((rt, live)) = keys
                && let Some(program) = live.triggered.get(&l.flow)
            {
                job.max_attempts = program.plan.job.max_attempts.clamp(1, i16::MAX as u32) as i16;
                match crate::engine::run::concurrency_key(rt, live, program, &job.args).await {
                    Ok(key) => job.concurrency_key = key,
                    Err(e) => tracing::error!(flow = %l.flow, change = change.id, error = %e,
                        "a table trigger's concurrency key failed; the job joins the group without a key"),
                }
            }
            if queue::enqueue(&mut tx, &job).await?.is_some() {
                round.jobs += 1;
            }
        }
    }
    sqlx::query(
        "UPDATE sluice.change_cursor SET last_xid = $1::text::xid8, last_id = $2, updated_at = now() WHERE id = 1",
    )
    .bind(&last.xid)
    .bind(last.id)
    .execute(&mut *tx)
    .await?;
    if round.jobs > 0 {
        queue::notify(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(round)
}

/// Deletes dispatched changes older than `retention`; returns how many.
pub async fn prune(db: &PgPool, retention: Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM sluice.changes c USING sluice.change_cursor k \
         WHERE k.id = 1 AND (c.xid, c.id) <= (k.last_xid, k.last_id) \
           AND c.at < now() - make_interval(secs => $1)",
    )
    .bind(retention.as_secs_f64())
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen for the trigger's notifications (a session of its own).
    pub direct: PgConnectOptions,
    pub listen: bool,
    /// Period of the poll that backs the notifications up.
    pub every: Duration,
}

/// The dispatcher's tasks; dropping this stops them.
pub struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Starts the dispatcher: a round at each notification and at least every `opts.every`.
pub fn start<R: Routes>(serving: Arc<Serving<R>>, db: PgPool, opts: Options) -> Tasks {
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    if opts.listen {
        tasks.push(tokio::spawn(listen(wake.clone(), opts.direct.clone())));
    }
    tasks.push(tokio::spawn(run(serving, db, wake, opts.every)));
    Tasks(tasks)
}

async fn run<R: Routes>(
    serving: Arc<Serving<R>>,
    db: PgPool,
    wake: Arc<tokio::sync::Notify>,
    every: Duration,
) {
    // The listeners of the generation served, compiled when it changes.
    let mut compiled: Option<(i64, Arc<Vec<Listener>>)> = None;
    loop {
        // Dispatch only with what is published now: while this instance has not caught up
        // with a change of the catalog (another instance published), wait for its follower,
        // so a flow gets every change dispatched after its publication.
        match crate::catalog::groups::generation(&db).await {
            Ok(current) if current > serving.generation() => {
                let _ = tokio::time::timeout(every, wake.notified()).await;
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "table events: cannot read the catalog generation; retrying");
                tokio::time::sleep(every).await;
                continue;
            }
        }
        let served = serving.load();
        let current = match &compiled {
            Some((generation, l)) if *generation == served.generation => l.clone(),
            _ => match crate::tables::store::all(&db).await {
                Ok(tables) => {
                    let l = Arc::new(listeners(
                        served.live.triggered.values().map(|p| &p.plan),
                        &tables,
                    ));
                    compiled = Some((served.generation, l.clone()));
                    l
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the tables for table events; retrying");
                    tokio::time::sleep(every).await;
                    continue;
                }
            },
        };
        loop {
            let keys = Some((serving.runtime().as_ref(), &served.live));
            match dispatch_once(&db, &current, keys).await {
                Ok(r) if r.changes as i64 == BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "table events: a dispatch round failed; retrying");
                    break;
                }
            }
        }
        let _ = tokio::time::timeout(every, wake.notified()).await;
    }
}

async fn listen(wake: Arc<tokio::sync::Notify>, direct: PgConnectOptions) {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(direct);
    loop {
        let mut listener = match PgListener::connect_with(&own).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to listen for table events; polling");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "cannot listen for table events; polling");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        wake.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(_) => wake.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the table events listener; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    fn cond(column: &str, op: FilterOp, value: Value) -> Predicate {
        Predicate::Cond {
            column: column.into(),
            op,
            value,
        }
    }

    #[test]
    fn conditions_compare_like_the_database() {
        let r = row(
            json!({"n": 5, "price": 12.5, "s": "Hello", "at": "2026-01-02T10:00:00+00:00", "z": null}),
        );
        assert!(cond("n", FilterOp::Eq, json!(5)).eval(&r));
        assert!(cond("price", FilterOp::Eq, json!("12.50")).eval(&r));
        assert!(cond("n", FilterOp::Ge, json!(5)).eval(&r));
        assert!(!cond("n", FilterOp::Gt, json!(5)).eval(&r));
        assert!(cond("at", FilterOp::Eq, json!("2026-01-02T11:00:00+01:00")).eval(&r));
        assert!(cond("at", FilterOp::Lt, json!("2026-01-02T10:00:01Z")).eval(&r));
        assert!(cond("s", FilterOp::Contains, json!("ELL")).eval(&r));
        assert!(!cond("s", FilterOp::StartsWith, json!("hel")).eval(&r));
        assert!(cond("n", FilterOp::In, json!([1, 5])).eval(&r));
        assert!(cond("z", FilterOp::IsNull, json!(true)).eval(&r));
        assert!(cond("z", FilterOp::Ne, json!(1)).eval(&r));
        assert!(!cond("z", FilterOp::Eq, json!(1)).eval(&r));
        assert!(!cond("z", FilterOp::Lt, json!(1)).eval(&r));
        let any = Predicate::Or(vec![
            cond("n", FilterOp::Eq, json!(1)),
            cond("s", FilterOp::Eq, json!("Hello")),
        ]);
        assert!(any.eval(&r));
        assert!(!Predicate::Or(vec![]).eval(&r));
        assert!(Predicate::And(vec![]).eval(&r));
    }
}
