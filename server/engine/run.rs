//! The interpreter: walks a [`Program`] for one request under a whole-request deadline. All
//! writes of a request share one transaction that commits only when the flow ends in a
//! `respond` with a status below 500; `fail`, errors and timeouts roll it back.

use super::error::RunError;
use super::lane::{Lane, LaneConn};
use super::outbound::Outbound;
use super::program::Program;
use super::sandbox::{self, DEADLINE_TOKEN, OPERATIONS_TOKEN, Sandbox};
use super::sql::{ParamKind, Prepared};
use crate::auth::jwt::KeyRing;
use crate::flow::CompiledOp;
use crate::flow::expr::Template;
use crate::flow::plan::{ContentType, TransactionMode};
use rhai::{Dynamic, EvalAltResult, Scope};
use serde_json::{Map, Value};
use sqlx::{Executor, PgPool};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a flow runs against that lasts as long as the server: the pool, the sandbox, the
/// outbound client. What changes with publishing is in [`Live`], given to each run.
pub struct Runtime {
    pub db: PgPool,
    /// The connections flows run their statements on, taken from `db` ([`Lane`]).
    pub lane: Arc<Lane>,
    /// The lane of the read replica's pool (`SLUICE_DATABASE_READ_URL`), for flows that do
    /// not write.
    pub read: Option<Arc<Lane>>,
    pub sandbox: Sandbox,
    /// The shared client and SSRF guard of `http.request`.
    pub outbound: Outbound,
    /// The most bytes of JSON one database node may read (`SLUICE_MAX_RESULT_BYTES`).
    pub max_result_bytes: usize,
    /// Behind a transaction pooler (`SLUICE_DATABASE_POOLER=transaction`): no statement stays
    /// prepared on a connection, so none is prepared ahead either.
    pub pooled: bool,
    /// Wakes the job workers once a run that enqueued has committed.
    pub jobs: Arc<crate::queue::signal::Signal>,
    /// End-user sessions ended while their access tokens may be alive (fed by the session
    /// nodes and `auth::sessions::follow`), checked by `endpoint.auth`.
    pub sessions: Arc<crate::auth::sessions::Revoked>,
}

/// What a run reads from the generation being served: published functions, token keys and
/// environment values. One immutable value; a run gets it once and keeps it to its end, so a
/// request never mixes two generations (the serving layer builds and swaps it).
#[derive(Clone, Default)]
pub struct Live {
    /// Published function flows by name, for `call`.
    pub functions: Arc<HashMap<String, Arc<Program>>>,
    /// Published flows with a trigger by name, for the workers and `job.enqueue`.
    pub triggered: Arc<HashMap<String, Arc<Program>>>,
    /// The token keys: the current one signs (`auth.issue_token`), all of them verify
    /// (`endpoint.auth`).
    pub token_keys: Arc<KeyRing>,
    /// Environment values and secrets.
    pub env: Arc<super::env::Env>,
    /// Canned answers for outbound HTTP calls (a debug run or flow test that gives them);
    /// `None` when serving.
    pub replay: Option<Arc<super::replay::Replay>>,
}

/// Default of [`Runtime::max_result_bytes`]: 16 MiB.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 16 << 20;

/// Results larger than this are parsed on the blocking pool, so a large result does not hold an
/// async worker for the milliseconds its parsing takes.
pub const PARSE_INLINE_MAX: usize = 256 * 1024;

impl Runtime {
    pub fn new(db: PgPool, limits: super::sandbox::ScriptLimits, outbound: Outbound) -> Runtime {
        Runtime {
            lane: Lane::for_pool(db.clone()),
            jobs: Arc::new(crate::queue::signal::Signal::new(db.clone())),
            db,
            read: None,
            sandbox: Sandbox::new(limits),
            outbound,
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            pooled: false,
            sessions: Arc::default(),
        }
    }
}

impl Runtime {
    /// Where a run of `program` reads and writes: the replica when there is one and the flow
    /// cannot write ([`Program::reads_only`]), else the primary.
    pub fn lane_for(&self, program: &Program) -> &Arc<Lane> {
        match &self.read {
            Some(read) if program.reads_only => read,
            _ => &self.lane,
        }
    }
}

/// The parts of an HTTP request a flow sees, already parsed.
#[derive(Debug, Default, Clone)]
pub struct Request {
    pub params: Map<String, Value>,
    pub query: Map<String, Value>,
    pub body: Value,
    /// Lowercase names; credentials (authorization, cookie) are never included.
    pub headers: Map<String, Value>,
    /// The caller, as `endpoint.auth` checked it: `{"id", "claims"}`, or `null` on public
    /// endpoints.
    pub auth: Value,
}

/// The response a flow produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// How `body` is sent: JSON, or a string as text or HTML.
    pub content_type: ContentType,
}

/// Where a node sends the run next.
pub enum Step {
    Next {
        /// The port that fired.
        port: &'static str,
        to: usize,
        bind: Option<Value>,
    },
    Done(Response),
    /// A `collect` ended a loop body's iteration with this value.
    Collected(Value),
}

/// One node of a debug run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TraceEntry {
    pub node: String,
    #[serde(rename = "type")]
    pub node_type: &'static str,
    /// The port that fired (`error` when the node failed and a handler took over).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<&'static str>,
    pub duration_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// The table's access rule the node's statement applied (`<table>.<action>`), so a run
    /// panel can say why a list is empty or a row was not found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// How a debug run treats its writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Commit the writes as a real request would; otherwise roll everything back.
    pub commit: bool,
}

/// How many times a `serializable` flow runs at most when Postgres keeps reporting
/// serialization failures.
pub const SERIALIZABLE_RUNS: u32 = 3;

/// Runs a program for one request, against the generation `live`. A `serializable` flow that
/// hits a serialization failure runs again from the start, at most [`SERIALIZABLE_RUNS`]
/// times in all, after a short random pause; each run has the flow's whole timeout.
pub async fn run(
    program: &Program,
    rt: &Runtime,
    live: &Live,
    req: Request,
) -> Result<Response, RunError> {
    if program.plan.transaction != TransactionMode::Serializable {
        return run_inner(program, rt, live, Start::Request(req), None, true, None).await;
    }
    let mut runs = 1;
    loop {
        let result = run_inner(
            program,
            rt,
            live,
            Start::Request(req.clone()),
            None,
            true,
            None,
        )
        .await;
        match result {
            Err(RunError::Serialization { .. }) if runs < SERIALIZABLE_RUNS => {
                runs += 1;
                let jitter = rand_millis(5 * u64::from(runs));
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
            }
            other => return other,
        }
    }
}

/// A random pause of 1 to `max` milliseconds, so runs that collided do not collide again.
fn rand_millis(max: u64) -> u64 {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    1 + OsRng.next_u64() % max.max(1)
}

/// A statement the run executes on its transaction just before `COMMIT` (a job's fenced
/// completion, `queue::work::complete_in`), given the run's trace so far (redacted, as JSON);
/// `false` means the run must not commit: its writes are rolled back. A run that wrote nothing
/// runs it alone. Given by the caller, so the engine does not know the queue.
pub type Fence = Box<
    dyn for<'c> FnOnce(
            &'c mut sqlx::PgConnection,
            Value,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + 'c>,
        > + Send,
>;

/// What a run of a flow with a trigger starts from (FLOW-FORMAT.md, "What a trigger flow
/// sees").
pub struct JobStart {
    /// `input`: the job's args.
    pub input: Value,
    /// `job`: `{id, attempt, flow, scheduled_at}`.
    pub job: Value,
    /// The job's id, for the stable `Idempotency-Key` of `http.request`.
    pub job_id: i64,
    /// Run before `COMMIT`; the run commits only when it says yes.
    pub fence: Fence,
}

/// How a job's run ended.
pub struct JobEnd {
    /// The flow's answer (its status decides: 2xx completed, 4xx discarded, else retried).
    pub result: Result<Response, RunError>,
    /// The trace of every node (the debug-run format, secrets redacted).
    pub trace: Vec<TraceEntry>,
    /// The fence said no: the worker lost the job, nothing was committed.
    pub lost: bool,
    /// The flow answered 2xx without writing anything, so there was no transaction to fence:
    /// the fence did not run and the caller completes the job itself (the worker does it on
    /// the queue's own connections, `crate::queue::work::complete`).
    pub unfenced: bool,
}

/// Runs a flow with a trigger for one job, on the primary: its writes share one transaction,
/// which commits only when the flow answers 2xx and the fence (run inside that transaction,
/// or alone when the flow wrote nothing) agrees.
pub async fn run_job(program: &Program, rt: &Runtime, live: &Live, start: JobStart) -> JobEnd {
    let mut trace = Trace::default();
    let mut fenced = None;
    let JobStart {
        input,
        job,
        job_id,
        fence,
    } = start;
    let result = run_inner(
        program,
        rt,
        live,
        Start::Job { input, job, job_id },
        Some(&mut trace),
        true,
        Some((fence, &mut fenced)),
    )
    .await;
    let lost = fenced == Some(false);
    let unfenced = result.is_ok() && fenced.is_none();
    let Trace {
        mut entries,
        secrets,
    } = trace;
    // The answer's body becomes the job's error when it is not 2xx: no secret in it.
    let env = &live.env;
    let result = result.map(|mut r| {
        if env.has_hidden() {
            r.body = env.redact(&r.body);
        }
        r
    });
    let forms = super::env::hidden_forms(secrets.iter().map(String::as_str));
    let result = if secrets.is_empty() {
        result
    } else {
        for e in &mut entries {
            for v in [&mut e.input, &mut e.output, &mut e.error]
                .into_iter()
                .flatten()
            {
                scrub(v, &secrets);
            }
        }
        result
            .map(|mut r| {
                scrub(&mut r.body, &secrets);
                r
            })
            .map_err(|e| e.redacted(&|text| super::env::hide(text, &forms)))
    };
    JobEnd {
        result,
        trace: entries,
        lost,
        unfenced,
    }
}

/// The concurrency key of a job of `program` (a flow with a trigger) with `input`: its
/// `settings.concurrency.key` computed over `input` and `event` (`input.event`), as text;
/// `None` without a key, or when it computes to null. For producers of jobs outside a run (the
/// scheduler, the table-change dispatcher); `job.enqueue` computes it within its own run.
pub async fn concurrency_key(
    rt: &Runtime,
    live: &Live,
    program: &Program,
    input: &Value,
) -> Result<Option<String>, RunError> {
    let Some(t) = &program.plan.job.concurrency_key else {
        return Ok(None);
    };
    let ast = match t {
        Template::Literal(v) => return Ok(key_text(v.clone())),
        Template::Expr(ast) | Template::Var(_, ast) | Template::Pick { ast, .. } => ast,
        Template::Object(_) | Template::Array(_) => return Ok(None),
    };
    let event = input.get("event").cloned().unwrap_or(Value::Null);
    let mut scope = Scope::new();
    scope.push_constant_dynamic("input", sandbox::to_dynamic_ref(input));
    scope.push_constant_dynamic("event", sandbox::to_dynamic(event));
    let mut read_secret = false;
    // The sandbox's own time limit bounds it.
    let deadline = Instant::now() + Duration::from_secs(3600);
    let script = |message: String| RunError::Script {
        node: "settings.concurrency.key".into(),
        message,
    };
    let d = rt
        .sandbox
        .eval_off_worker(
            deadline,
            &mut scope,
            ast,
            false,
            &live.env,
            &mut read_secret,
        )
        .await
        .map_err(|e| script(e.to_string()))?;
    sandbox::to_json(&d).map(key_text).map_err(script)
}

/// A concurrency key as stored: text as it is, other values as JSON text, null as none.
pub fn key_text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// What a run starts from: an HTTP request, or a job.
enum Start {
    Request(Request),
    Job {
        input: Value,
        job: Value,
        job_id: i64,
    },
}

/// Runs a program with a trace of every node, for the editor's debug runs. Values that nodes
/// marked secret (tokens, password hashes, the passwords they were given) show as `"***"`
/// everywhere in the trace and in the returned response.
pub async fn run_traced(
    program: &Program,
    rt: &Runtime,
    live: &Live,
    req: Request,
    opts: RunOptions,
) -> (Result<Response, RunError>, Vec<TraceEntry>) {
    traced(program, rt, live, Start::Request(req), opts).await
}

/// [`run_traced`] for a flow with a trigger (the run panel's sample job or event): `input` and
/// `job` as a worker would give them (FLOW-FORMAT.md, "What a trigger flow sees"), with no
/// queue behind it. Like a job, it commits only on a 2xx answer, and only with
/// `opts.commit`.
pub async fn run_job_traced(
    program: &Program,
    rt: &Runtime,
    live: &Live,
    input: Value,
    job: Value,
    opts: RunOptions,
) -> (Result<Response, RunError>, Vec<TraceEntry>) {
    let job_id = job.get("id").and_then(Value::as_i64).unwrap_or(0);
    let start = Start::Job { input, job, job_id };
    traced(program, rt, live, start, opts).await
}

async fn traced(
    program: &Program,
    rt: &Runtime,
    live: &Live,
    start: Start,
    opts: RunOptions,
) -> (Result<Response, RunError>, Vec<TraceEntry>) {
    let mut trace = Trace::default();
    let result = run_inner(
        program,
        rt,
        live,
        start,
        Some(&mut trace),
        opts.commit,
        None,
    )
    .await;
    let Trace {
        mut entries,
        secrets,
    } = trace;
    // The answer a debug run shows: secrets of the environment hidden like in the trace.
    let env = &live.env;
    let result = result.map(|mut r| {
        if env.has_hidden() {
            r.body = env.redact(&r.body);
            for (_, v) in &mut r.headers {
                *v = env.redact_text(v);
            }
        }
        r
    });
    if secrets.is_empty() {
        return (result, entries);
    }
    let forms = super::env::hidden_forms(secrets.iter().map(String::as_str));
    let result = result.map_err(|e| e.redacted(&|text| super::env::hide(text, &forms)));
    for e in &mut entries {
        for v in [&mut e.input, &mut e.output, &mut e.error]
            .into_iter()
            .flatten()
        {
            scrub(v, &secrets);
        }
    }
    let result = result.map(|mut r| {
        scrub(&mut r.body, &secrets);
        for (_, v) in &mut r.headers {
            if secrets
                .iter()
                .any(|x| v == x || (x.len() >= SECRET_SUBSTRING_MIN && v.contains(x.as_str())))
            {
                *v = "***".into();
            }
        }
        r
    });
    (result, entries)
}

/// What a debug run records: one entry per node, and the values that must not be shown.
#[derive(Default)]
pub struct Trace {
    entries: Vec<TraceEntry>,
    secrets: Vec<String>,
}

impl Trace {
    /// The entries as JSON, with the values marked secret hidden (as a debug run shows them).
    fn snapshot(&self) -> Value {
        let mut entries = self.entries.clone();
        if !self.secrets.is_empty() {
            for e in &mut entries {
                for v in [&mut e.input, &mut e.output, &mut e.error]
                    .into_iter()
                    .flatten()
                {
                    scrub(v, &self.secrets);
                }
            }
        }
        serde_json::to_value(entries).unwrap_or(Value::Null)
    }
}

/// Secrets shorter than this are hidden only where a string equals them; longer ones also
/// where a string contains them (`"Bearer <token>"`).
const SECRET_SUBSTRING_MIN: usize = 8;

/// Replaces every string that holds a secret with `"***"`.
fn scrub(v: &mut Value, secrets: &[String]) {
    match v {
        Value::String(s) => {
            let hit = secrets
                .iter()
                .any(|x| s == x || (x.len() >= SECRET_SUBSTRING_MIN && s.contains(x.as_str())));
            if hit {
                *s = "***".into();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| scrub(i, secrets)),
        Value::Object(map) => map.values_mut().for_each(|i| scrub(i, secrets)),
        _ => {}
    }
}

async fn run_inner(
    program: &Program,
    rt: &Runtime,
    live: &Live,
    mut start: Start,
    trace: Option<&mut Trace>,
    commit: bool,
    fence: Option<(Fence, &mut Option<bool>)>,
) -> Result<Response, RunError> {
    match &mut start {
        Start::Request(req) => program
            .check_input(&mut req.params, &mut req.query, &mut req.body)
            .map_err(RunError::Input)?,
        // A job's input is checked against `input.body`, as a request's body is.
        Start::Job { input, .. } => program
            .check_input(&mut Map::new(), &mut Map::new(), input)
            .map_err(RunError::Input)?,
    }
    let deadline = Instant::now() + Duration::from_millis(program.plan.timeout_ms);
    // The trace lives outside the timed walk, so a run that times out still shows its steps.
    let sink = trace
        .as_ref()
        .map(|_| std::sync::Mutex::new(Trace::default()));
    let result = match tokio::time::timeout_at(
        deadline.into(),
        walk(program, rt, live, start, deadline, sink.as_ref(), commit),
    )
    .await
    {
        // The answer is decided within the deadline; its commit or rollback then runs to the
        // end even past it. Cut off mid-COMMIT, the writes could be stored while the client
        // is told 504: the answer must agree with the database.
        Ok(Ok(mut done)) => {
            let ended = match fence {
                Some((fence, fenced)) => {
                    done.db
                        .finish_fenced(done.keep, fence, &sink)
                        .await
                        .map(|owned| {
                            *fenced = owned;
                            owned != Some(false)
                        })
                }
                None => done.db.finish(done.keep).await.map(|()| true),
            };
            match ended {
                Ok(committed) => {
                    if committed && done.keep && done.db.enqueued {
                        rt.jobs.enqueued();
                    }
                    Ok(done.response)
                }
                Err(e) => Err(RunError::from_db(&done.last, e)),
            }
        }
        Ok(Err(e)) => Err(e),
        // Dropping the walk drops its transaction, which rolls it back.
        Err(_) => Err(RunError::Timeout),
    };
    if let (Some(t), Some(sink)) = (trace, sink) {
        *t = sink.into_inner().unwrap_or_default();
    }
    // Error messages go to the log, to error responses below 500 and to debug runs: none may
    // show a secret (a script's message can hold any value, `db` errors quote values).
    let env = &live.env;
    if env.has_hidden() {
        return result.map_err(|e| e.redacted(&|text| env.redact_text(text)));
    }
    result
}

/// The value of `error` in an error handler.
fn error_value(e: &RunError, node: &str) -> Value {
    e.error_value(node)
}

/// Failures a flow may handle. Timeouts end the request; a missing row and invalid input
/// have their own ports and default answers.
fn handleable(e: &RunError) -> bool {
    !matches!(
        e,
        RunError::Timeout
            // The transaction is aborted: only running the flow again can help.
            | RunError::Serialization { .. }
            | RunError::NotFound { .. }
            | RunError::Input(_)
            | RunError::InvalidCredentials { .. }
    )
}

/// A run that reached its answer: what to send, and the transaction to end first.
struct Finished {
    response: Response,
    db: Db,
    /// Commit (rather than roll back) the request's writes.
    keep: bool,
    /// The terminal node, for the error of a failed commit.
    last: String,
}

async fn walk(
    program: &Program,
    rt: &Runtime,
    live: &Live,
    start: Start,
    deadline: Instant,
    trace: Option<&std::sync::Mutex<Trace>>,
    commit: bool,
) -> Result<Finished, RunError> {
    let (auth, job_id) = match &start {
        Start::Request(req) => (req.auth.clone(), None),
        Start::Job { job_id, .. } => (Value::Null, Some(*job_id)),
    };
    let mut scope = Scope::new();
    scope.push_constant_dynamic("auth", sandbox::to_dynamic(auth.clone()));
    scope.push_constant_dynamic("env", live.env.public.clone());
    let plan = &program.plan;
    // `settings.transaction: serializable` runs every statement, reads included, in one
    // SERIALIZABLE transaction on the primary (a standby cannot serialize).
    let serializable = plan.transaction == TransactionMode::Serializable;
    let lane_for = || {
        if serializable {
            rt.lane.clone()
        } else {
            rt.lane_for(program).clone()
        }
    };
    let (lane, writes) = match (&start, commit) {
        // A job runs on the primary; its writes, if any, share one transaction (never the
        // single-statement shortcut): its completion is fenced in it. A `call` opens it when
        // its function writes.
        (Start::Job { .. }, _) => (rt.lane.clone(), plan.writes() || serializable),
        (Start::Request(_), true) => match plan.transaction {
            TransactionMode::Auto => (lane_for(), program.needs_transaction),
            // Every statement commits on its own.
            TransactionMode::None => (lane_for(), false),
            TransactionMode::Serializable => (lane_for(), true),
        },
        // A debug run that must not commit always needs its transaction to roll back.
        (Start::Request(_), false) => (lane_for(), plan.writes() || serializable),
    };
    let mut cx = Cx {
        rt,
        live,
        program,
        scope,
        db: Db {
            lane,
            tx: None,
            writes,
            enqueued: false,
            serializable,
        },
        deadline,
        node: 0,
        input: None,
        trace,
        steps: 0,
        depth: 0,
        bound: Bound::default(),
        read_secret: false,
        job_id,
        auth,
    };
    let is_job = job_id.is_some();
    match start {
        // `request` is the first binding (see [`Bound`]): it becomes a Rhai value only if an
        // expression runs, and paths such as `request.params.id` read it as JSON.
        Start::Request(req) => {
            let mut request = Map::new();
            request.insert("params".into(), Value::Object(req.params));
            request.insert("query".into(), Value::Object(req.query));
            request.insert("body".into(), req.body);
            request.insert("headers".into(), Value::Object(req.headers));
            cx.bind("request", Value::Object(request));
        }
        // A trigger flow sees `input`, `event` (a table trigger's change, else null) and
        // `job` (FLOW-FORMAT.md, "What a trigger flow sees").
        Start::Job { input, job, .. } => {
            let event = input.get("event").cloned().unwrap_or(Value::Null);
            cx.bind("input", input);
            cx.bind("event", event);
            cx.bind("job", job);
        }
    }
    let result = walk_graph(&mut cx, plan.entry, plan.on_error).await;
    match result? {
        End::Respond { response, respond } => {
            // A job commits only when it completes (2xx); an endpoint also on a `respond`
            // below 500.
            let keep = commit
                && if is_job {
                    (200..300).contains(&response.status)
                } else {
                    response.status < 400 || (response.status < 500 && respond)
                };
            let last = plan
                .nodes
                .get(cx.node)
                .map(|n| n.id.clone())
                .unwrap_or_default();
            let db = std::mem::replace(&mut cx.db, Db::detached(rt.lane.clone()));
            Ok(Finished {
                response,
                db,
                keep,
                last,
            })
        }
        End::Collected(_) => Err(RunError::Type {
            node: String::new(),
            message: "collect outside a loop".into(),
        }),
    }
}

/// How a graph ended.
pub enum End {
    /// A `respond` (`respond: true`) or `fail` ended the run.
    Respond { response: Response, respond: bool },
    /// A `collect` ended one iteration of a loop body.
    Collected(Value),
}

pub use super::error::MAX_CALL_DEPTH;

pub use super::error::STEP_BUDGET;

/// Walks a graph of the current program from `entry` until a terminal node. `handler` is the
/// graph's `on_error` node. Boxed because loop bodies and calls walk graphs recursively.
pub fn walk_graph<'c, 'a>(
    cx: &'c mut Cx<'a>,
    entry: usize,
    handler: Option<usize>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<End, RunError>> + Send + 'c>> {
    Box::pin(async move {
        let plan = &cx.program.plan;
        let mut at = entry;
        let mut in_handler = false;
        loop {
            cx.steps += 1;
            if cx.steps > STEP_BUDGET {
                return Err(RunError::StepBudget {
                    node: plan.nodes[at].id.clone(),
                });
            }
            cx.node = at;
            cx.input = None;
            let node = &plan.nodes[at];
            let started = cx.trace.is_some().then(Instant::now);
            let outcome = node.op.run(cx).await;
            cx.node = at;
            let mut entry = cx.trace.map(|_| TraceEntry {
                node: node.id.clone(),
                node_type: node.type_name,
                port: None,
                duration_us: started.map_or(0, |t| t.elapsed().as_micros() as u64),
                input: cx.input.take().map(|v| cx.redact(&v)),
                output: None,
                error: None,
                rule: cx
                    .program
                    .sql
                    .get(at)
                    .and_then(Option::as_ref)
                    .and_then(|p| p.rule.as_ref())
                    .map(|r| r.name.clone()),
            });
            let step = match outcome {
                Ok(step) => step,
                Err(e)
                    if handleable(&e)
                        && (node.error.is_some() || (handler.is_some() && !in_handler)) =>
                {
                    let value = error_value(&e, &node.id);
                    if let Some(t) = entry.as_mut() {
                        t.port = Some("error");
                        t.error = Some(cx.redact(&value));
                    }
                    cx.bind("error", value);
                    at = match node.error {
                        Some(to) => to,
                        None => {
                            in_handler = true;
                            handler.unwrap_or(at)
                        }
                    };
                    cx.record(entry);
                    continue;
                }
                Err(e) => {
                    if let Some(t) = entry.as_mut() {
                        t.error = Some(cx.redact(&error_value(&e, &node.id)));
                    }
                    cx.record(entry);
                    return Err(e);
                }
            };
            match step {
                Step::Next { port, to, bind } => {
                    if let Some(t) = entry.as_mut() {
                        t.port = Some(port);
                        t.output = bind.as_ref().map(|v| cx.redact(v));
                    }
                    cx.record(entry);
                    if let (Some(name), Some(value)) = (&node.bind, bind) {
                        cx.bind(name.as_str(), value);
                    }
                    at = to;
                }
                Step::Done(response) => {
                    if let Some(t) = entry.as_mut() {
                        t.output = Some(
                            serde_json::json!({"status": response.status, "body": cx.redact(&response.body)}),
                        );
                    }
                    cx.record(entry);
                    let respond = node.op.is_respond();
                    return Ok(End::Respond { response, respond });
                }
                Step::Collected(value) => {
                    if let Some(t) = entry.as_mut() {
                        t.output = Some(cx.redact(&value));
                    }
                    cx.record(entry);
                    return Ok(End::Collected(value));
                }
            }
        }
    })
}

/// The most entries a trace keeps (loops can run many nodes).
pub const TRACE_LIMIT: usize = 2_000;

/// Largest value a trace keeps per node, as JSON text.
const TRACE_VALUE_LIMIT: usize = 16 * 1024;

/// A value as a trace may show it: cut down when large.
fn redact(v: &Value) -> Value {
    let text = v.to_string();
    if text.len() <= TRACE_VALUE_LIMIT {
        return v.clone();
    }
    let mut cut = TRACE_VALUE_LIMIT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    serde_json::json!({"truncated": true, "bytes": text.len(), "preview": &text[..cut]})
}

/// The state of one run that node steps use.
pub struct Cx<'a> {
    pub rt: &'a Runtime,
    /// The generation this run serves, for all of its steps (calls included).
    pub live: &'a Live,
    pub program: &'a Program,
    pub scope: Scope<'static>,
    pub db: Db,
    pub deadline: Instant,
    /// Index of the running node.
    pub node: usize,
    /// What the running node worked on, for the trace (set only when tracing).
    pub input: Option<Value>,
    /// Where trace entries go, in a debug run.
    pub trace: Option<&'a std::sync::Mutex<Trace>>,
    /// Nodes run so far in this request (see [`STEP_BUDGET`]).
    pub steps: usize,
    /// How many `call`s deep this walk is.
    pub depth: usize,
    /// Values bound by `as`, loops and error handlers (see [`Bound`]).
    pub bound: Bound,
    /// Whether an expression of this run has read a secret: script error messages are then
    /// hidden (they can embed any value the script held).
    pub read_secret: bool,
    /// The job this run is an attempt of (`None` for requests): `http.request` sends
    /// `Idempotency-Key: sluice-job-<id>-<node id>`, the same on every attempt.
    pub job_id: Option<i64>,
    /// The caller (`{"id", "claims"}`, null when anonymous or in a job): what access rules
    /// bind (`Prepared::rule`).
    pub auth: Value,
}

/// The values a run has bound to names (`as`, a loop's item and index, `error`), kept as JSON
/// and handed to Rhai only when an expression runs. A value that only bare-name templates read
/// (a `respond` body `{"$rhai": "item"}`, the usual end of a flow) is never converted to Rhai
/// and back: for a list of rows that conversion was most of the interpreter's work.
#[derive(Default)]
pub struct Bound {
    vars: Vec<(String, Value)>,
    /// How many of `vars`, from the start, are in the Rhai scope (after the built-ins, in order).
    in_scope: usize,
}

impl<'a> Cx<'a> {
    /// Binds a value to a name for the rest of the walk (or of the loop iteration).
    pub fn bind(&mut self, name: &str, value: Value) {
        self.bound.vars.push((name.to_string(), value));
    }

    /// A position to [`rewind`](Self::rewind) bindings to.
    pub fn bound_mark(&self) -> usize {
        self.bound.vars.len()
    }

    /// Forgets the bindings made since `mark`, in the Rhai scope too.
    pub fn rewind(&mut self, mark: usize) {
        if self.bound.in_scope > mark {
            let drop = self.bound.in_scope - mark;
            self.scope.rewind(self.scope.len().saturating_sub(drop));
            self.bound.in_scope = mark;
        }
        self.bound.vars.truncate(mark);
    }

    /// Puts the bindings Rhai has not seen yet into its scope, in the order they were made.
    fn sync_scope(&mut self) {
        for (name, value) in &self.bound.vars[self.bound.in_scope..] {
            self.scope
                .push_constant_dynamic(name.clone(), sandbox::to_dynamic_ref(value));
        }
        self.bound.in_scope = self.bound.vars.len();
    }

    pub fn node_id(&self) -> &str {
        &self.program.plan.nodes[self.node].id
    }

    /// The node's prepared statement, borrowed from the program rather than from `self`, so a
    /// step can hold it while using `self.db`.
    pub fn prepared(&self) -> &'a Prepared {
        static NONE: Prepared = Prepared {
            text: String::new(),
            slots: Vec::new(),
            kinds: Vec::new(),
            patch: Vec::new(),
            cursor: None,
            on: None,
            capped: std::sync::OnceLock::new(),
            rule: None,
            orders: Vec::new(),
        };
        let program: &'a Program = self.program;
        program.sql[self.node].as_ref().unwrap_or(&NONE)
    }

    /// The text bound for a value: JSON columns get JSON text, passwords are hashed by the
    /// one rule of every writer of rows (`tables::value::for_storage`).
    pub async fn param(&self, kind: ParamKind, v: &Value) -> Result<Option<String>, RunError> {
        match (kind, v) {
            (_, Value::Null) => Ok(None),
            (ParamKind::Json, v) => Ok(Some(v.to_string())),
            (ParamKind::Password, Value::String(s)) if !s.is_empty() => {
                use crate::tables::value::{StoreError, for_storage};
                for_storage(crate::tables::FieldType::Password, Some(s.clone()))
                    .await
                    .map_err(|e| match e {
                        StoreError::Busy => RunError::Busy {
                            node: self.node_id().to_string(),
                        },
                        StoreError::Hash(message) => self.type_error(message),
                    })
            }
            (ParamKind::Password, _) => Err(RunError::InvalidValue {
                node: self.node_id().to_string(),
                message: "a password must be non-empty text".into(),
            }),
            // Exact: the number's own digits (or a string of them), never a float.
            (ParamKind::Decimal { precision, scale }, v) => {
                let text = match v {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    _ => String::new(),
                };
                crate::tables::decimal::check(&text, precision, scale)
                    .map(Some)
                    .map_err(|message| RunError::InvalidValue {
                        node: self.node_id().to_string(),
                        message: format!("a decimal field: {message}, got {v}"),
                    })
            }
            (ParamKind::Text, v) => Ok(bind_text(v)),
        }
    }

    /// A value as a trace may show it: secrets replaced, large values cut down.
    pub fn redact(&self, v: &Value) -> Value {
        redact(&self.live.env.redact(v))
    }

    /// Adds an entry to the trace, if one is kept (at most [`TRACE_LIMIT`] entries).
    pub fn record(&self, entry: Option<TraceEntry>) {
        if let (Some(sink), Some(e)) = (self.trace, entry)
            && let Ok(mut t) = sink.lock()
            && t.entries.len() < TRACE_LIMIT
        {
            t.entries.push(e);
        }
    }

    /// Marks a value the node handled as secret: a debug run shows `"***"` wherever it appears
    /// in the trace or the response, including in nodes that ran before.
    pub fn keep_secret(&mut self, value: &str) {
        if let Some(sink) = self.trace
            && !value.is_empty()
            && let Ok(mut t) = sink.lock()
        {
            t.secrets.push(value.to_string());
        }
    }

    /// Records what the node works on, when a trace is being kept.
    pub fn note_input(&mut self, make: impl FnOnce() -> Value) {
        if self.trace.is_some() {
            self.input = Some(make());
        }
    }

    /// Whether a failure of the running node is handled by the flow (its `error` port or the
    /// flow's `on_error`), so its statement must not abort the request's transaction.
    pub fn failure_handled(&self) -> bool {
        let plan = &self.program.plan;
        plan.nodes[self.node].error.is_some() || plan.on_error.is_some()
    }

    /// Refuses a value no column can store, before it is bound: text with a NUL character
    /// (Postgres' text and jsonb cannot hold U+0000, in strings or keys). The pointer names
    /// the request part when `source` reads one as it is (`request.body.title` → `/body/title`),
    /// else the place in the flow document, `/nodes/<node>/<at>`.
    /// `key` is a property of what `source` reads (a `patch` object's column).
    pub fn check_storable(
        &self,
        v: &Value,
        source: &Template,
        key: Option<&str>,
        at: impl FnOnce() -> String,
    ) -> Result<(), RunError> {
        if !crate::tables::value::has_nul(v) {
            return Ok(());
        }
        let pointer = match (source, key) {
            (Template::Var(path, _), None) => request_pointer(path),
            (Template::Var(path, _), Some(k)) => request_pointer(&format!("{path}.{k}")),
            _ => None,
        }
        .unwrap_or_else(|| format!("/nodes/{}/{}", self.node_id(), at()));
        Err(RunError::BadValue {
            node: self.node_id().to_string(),
            pointer,
            message: "text must not contain NUL characters (\\u0000)".into(),
        })
    }

    /// The last check before Postgres, for values no node checked with
    /// [`check_storable`](Self::check_storable) (ids, filters, credentials, `db.sql`).
    fn check_binds(&self, binds: &[Option<String>]) -> Result<(), RunError> {
        if binds.iter().flatten().any(|b| b.contains('\0')) {
            return Err(RunError::BadValue {
                node: self.node_id().to_string(),
                pointer: format!("/nodes/{}", self.node_id()),
                message: "text must not contain NUL characters (\\u0000)".into(),
            });
        }
        Ok(())
    }

    /// Runs the node's statement; `guarded` wraps it in a savepoint so a refused write (wired to
    /// a `conflict` port) does not abort the request's transaction.
    pub async fn fetch(
        &mut self,
        binds: Vec<Option<String>>,
        guarded: bool,
    ) -> Result<Option<Value>, RunError> {
        self.fetch_with(self.prepared(), binds, guarded).await
    }

    /// [`Cx::fetch`] of one of the node's statements (a client sort's, [`Prepared::orders`]).
    pub async fn fetch_with(
        &mut self,
        prepared: &'a Prepared,
        mut binds: Vec<Option<String>>,
        guarded: bool,
    ) -> Result<Option<Value>, RunError> {
        // The rule's parameters are the statement's last: the node's own binds come first.
        if let Some(rule) = &prepared.rule {
            binds.truncate(prepared.slots.len() - rule.params.len());
            binds.extend(
                rule.params
                    .iter()
                    .map(|p| crate::tables::rules::bind_text(p, self.caller())),
            );
        }
        let sql = prepared.text_capped(self.rt.max_result_bytes);
        let node: &'a str = {
            let program: &'a Program = self.program;
            &program.plan.nodes[self.node].id
        };
        let guarded = guarded || self.failure_handled();
        self.check_binds(&binds)?;
        let limit = self.rt.max_result_bytes;
        // A write that runs without a transaction has committed once its statement returned:
        // its result must not be refused after that. Its size was checked inside the statement
        // (`tables::query::guarded_row`), and its table has no json field, so nothing in it can
        // fail to parse (`Program::build`).
        let committed_alone = !self.db.writes && self.program.plan.nodes[self.node].op.writes();
        let cap = if committed_alone { usize::MAX } else { limit };
        match self.db.one(&sql, binds, guarded, cap).await {
            Ok(v) => Ok(v),
            Err(ReadError::TooLarge(bytes)) => Err(RunError::ResultTooLarge {
                node: node.to_string(),
                bytes,
                limit,
            }),
            // division_by_zero: only the size guard of a write raises it in statements Sluice
            // builds.
            Err(ReadError::Db(sqlx::Error::Database(e)))
                if e.code().as_deref() == Some("22012") =>
            {
                Err(RunError::ResultTooLarge {
                    node: node.to_string(),
                    bytes: None,
                    limit,
                })
            }
            // A rule's check refused the written row, inside the statement (so nothing was
            // written).
            Err(ReadError::Db(sqlx::Error::Database(e)))
                if e.code().as_deref() == Some(crate::tables::query::RULE_DENIED) =>
            {
                Err(RunError::RuleDenied {
                    node: node.to_string(),
                    rule: prepared
                        .rule
                        .as_ref()
                        .map(|r| r.name.clone())
                        .unwrap_or_default(),
                })
            }
            // Classified with the node's table, as the data API classifies it.
            Err(ReadError::Db(e)) => Err(match &prepared.on {
                Some(on) => RunError::from_db_on(node, e, Some(&on.def), &on.tables, on.action),
                None => RunError::from_db(node, e),
            }),
        }
    }

    /// Runs the node's statement as role [`APP_ROLE`] (`db.sql`), in its own savepoint, with
    /// a statement timeout that ends at the request's deadline.
    pub async fn fetch_as_app(
        &mut self,
        binds: Vec<Option<String>>,
    ) -> Result<Option<Value>, RunError> {
        let sql = self.prepared().text_capped(self.rt.max_result_bytes);
        let node: &'a str = {
            let program: &'a Program = self.program;
            &program.plan.nodes[self.node].id
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        let timeout_ms = left.as_millis().clamp(1, i32::MAX as u128);
        self.check_binds(&binds)?;
        let limit = self.rt.max_result_bytes;
        match self.db.as_app(&sql, binds, timeout_ms, limit).await {
            // The statement's aggregate always yields a row, unless it was over the cap.
            Ok(None) => Err(RunError::ResultTooLarge {
                node: node.to_string(),
                bytes: None,
                limit,
            }),
            Ok(v) => Ok(v),
            Err(AppSqlError::TooLarge(bytes)) => Err(RunError::ResultTooLarge {
                node: node.to_string(),
                bytes,
                limit,
            }),
            Err(AppSqlError::Unavailable(message)) => Err(RunError::SqlUnavailable {
                node: node.to_string(),
                message,
            }),
            Err(AppSqlError::Statement(e)) if is_canceled(&e) => Err(RunError::Timeout),
            Err(AppSqlError::Statement(e)) => Err(RunError::from_db(node, e)),
        }
    }

    /// Computes a value. Its expressions run inline first; when one outlasts its inline
    /// slice, the whole value is computed again with each expression free to move off the
    /// async worker (expressions have no effects, so the second computation gives the same).
    pub async fn eval(&mut self, t: &Template) -> Result<Value, RunError> {
        match self.eval_inline(t) {
            Ok(v) => Ok(v),
            Err(Inline::Failed(e)) => Err(e),
            Err(Inline::Moved) => self.eval_moving(t).await,
        }
    }

    fn eval_inline(&mut self, t: &Template) -> Result<Value, Inline> {
        match t {
            Template::Literal(v) => Ok(v.clone()),
            Template::Expr(ast) => {
                let d = self.eval_ast_inline(ast, false)?;
                Ok(self.to_json(&d)?)
            }
            Template::Var(path, ast) => match self.bound_path(path) {
                Some(v) => Ok(v),
                None => {
                    let d = self.eval_ast_inline(ast, false)?;
                    Ok(self.to_json(&d)?)
                }
            },
            Template::Pick {
                path,
                key,
                fallback,
                ast,
            } => match self.bound_pick(path, key, fallback.as_ref()) {
                Some(v) => Ok(v),
                None => {
                    let d = self.eval_ast_inline(ast, false)?;
                    Ok(self.to_json(&d)?)
                }
            },
            Template::Object(parts) => {
                let mut m = Map::new();
                for (k, t) in parts {
                    m.insert(k.clone(), self.eval_inline(t)?);
                }
                Ok(Value::Object(m))
            }
            Template::Array(items) => items
                .iter()
                .map(|t| self.eval_inline(t))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
        }
    }

    /// [`Cx::eval`] after an expression had to move: every expression may move.
    fn eval_moving<'t>(
        &'t mut self,
        t: &'t Template,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, RunError>> + Send + 't>>
    {
        Box::pin(async move {
            match t {
                Template::Literal(v) => Ok(v.clone()),
                Template::Expr(ast) => {
                    let d = self.eval_ast(ast, false).await?;
                    self.to_json(&d)
                }
                Template::Var(path, ast) => match self.bound_path(path) {
                    Some(v) => Ok(v),
                    None => {
                        let d = self.eval_ast(ast, false).await?;
                        self.to_json(&d)
                    }
                },
                Template::Pick {
                    path,
                    key,
                    fallback,
                    ast,
                } => match self.bound_pick(path, key, fallback.as_ref()) {
                    Some(v) => Ok(v),
                    None => {
                        let d = self.eval_ast(ast, false).await?;
                        self.to_json(&d)
                    }
                },
                Template::Object(parts) => {
                    let mut m = Map::new();
                    for (k, t) in parts {
                        m.insert(k.clone(), self.eval_moving(t).await?);
                    }
                    Ok(Value::Object(m))
                }
                Template::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for t in items {
                        out.push(self.eval_moving(t).await?);
                    }
                    Ok(Value::Array(out))
                }
            }
        })
    }

    /// Who access rules are judged for: the caller, and the request the run serves (the first
    /// binding, `request`; null in a job).
    pub fn caller(&self) -> crate::tables::rules::Caller<'_> {
        static NO_REQUEST: Value = Value::Null;
        let request = match self.bound.vars.first() {
            Some((name, v)) if name == "request" => v,
            _ => &NO_REQUEST,
        };
        crate::tables::rules::Caller {
            auth: &self.auth,
            request,
        }
    }

    /// The JSON value at a bare name or property path, when the run holds it as JSON.
    fn bound_path(&self, path: &str) -> Option<Value> {
        self.bound_ref(path).cloned()
    }

    fn bound_ref(&self, path: &str) -> Option<&Value> {
        let mut steps = path.split('.');
        let head = steps.next().unwrap_or_default();
        self.bound
            .vars
            .iter()
            .rev()
            .find(|(n, _)| n == head)
            .and_then(|(_, v)| steps.try_fold(v, |v, step| v.as_object()?.get(step)))
    }

    /// The JSON value of `key` in the object at a bound path (`request.body` + `title`), when
    /// the run holds it as JSON: the key's value, or the plain `fallback` when the key is
    /// absent (see [`Template::Pick`]).
    fn bound_pick(&self, path: &str, key: &str, fallback: Option<&Value>) -> Option<Value> {
        let object = self.bound_ref(path)?.as_object()?;
        object.get(key).or(fallback).cloned()
    }

    /// Runs an expression or script; scripts may declare variables, which end with the script.
    /// It starts inline and moves off the async worker when it outlasts its inline slice.
    pub async fn eval_ast(
        &mut self,
        ast: &std::sync::Arc<rhai::AST>,
        script: bool,
    ) -> Result<Dynamic, RunError> {
        match self.eval_ast_inline(ast, script) {
            Ok(d) => Ok(d),
            Err(Inline::Failed(e)) => Err(e),
            Err(Inline::Moved) => {
                let result = self
                    .rt
                    .sandbox
                    .eval_off_worker(
                        self.deadline,
                        &mut self.scope,
                        ast,
                        script,
                        &self.live.env,
                        &mut self.read_secret,
                    )
                    .await;
                result.map_err(|e| self.script_error(*e))
            }
        }
    }

    fn eval_ast_inline(&mut self, ast: &rhai::AST, script: bool) -> Result<Dynamic, Inline> {
        self.sync_scope();
        let result = self.rt.sandbox.eval_inline(
            self.deadline,
            &mut self.scope,
            ast,
            script,
            &self.live.env,
            &mut self.read_secret,
        );
        match result {
            Ok(d) => Ok(d),
            Err(e) if sandbox::is_moved(&e) => Err(Inline::Moved),
            Err(e) => Err(Inline::Failed(self.script_error(*e))),
        }
    }

    /// Computes an expression compiled for another scope (a job flow's concurrency key), with
    /// only `names` visible.
    pub async fn eval_with(
        &mut self,
        t: &Template,
        names: &[(&str, &Value)],
    ) -> Result<Value, RunError> {
        let ast = match t {
            Template::Literal(v) => return Ok(v.clone()),
            Template::Expr(ast) | Template::Var(_, ast) | Template::Pick { ast, .. } => ast,
            Template::Object(_) | Template::Array(_) => {
                return Err(self.type_error("an expression was expected"));
            }
        };
        let mut scope = Scope::new();
        for (name, v) in names {
            scope.push_constant_dynamic(name.to_string(), sandbox::to_dynamic_ref(v));
        }
        let result = self
            .rt
            .sandbox
            .eval_off_worker(
                self.deadline,
                &mut scope,
                ast,
                false,
                &self.live.env,
                &mut self.read_secret,
            )
            .await;
        match result {
            Ok(d) => self.to_json(&d),
            Err(e) => Err(self.script_error(*e)),
        }
    }

    pub fn to_json(&self, d: &Dynamic) -> Result<Value, RunError> {
        sandbox::to_json(d).map_err(|message| RunError::Type {
            node: self.node_id().to_string(),
            message,
        })
    }

    fn script_error(&self, e: EvalAltResult) -> RunError {
        let node = self.node_id().to_string();
        match e {
            e if sandbox::is_token(&e, DEADLINE_TOKEN) => {
                if Instant::now() >= self.deadline {
                    RunError::Timeout
                } else {
                    RunError::ScriptLimit {
                        node,
                        what: "time limit reached".into(),
                    }
                }
            }
            e if sandbox::is_token(&e, OPERATIONS_TOKEN) => RunError::ScriptLimit {
                node,
                what: "too many operations".into(),
            },
            EvalAltResult::ErrorTooManyOperations(_)
            | EvalAltResult::ErrorStackOverflow(_)
            | EvalAltResult::ErrorDataTooLarge(..)
            | EvalAltResult::ErrorTooManyVariables(_) => RunError::ScriptLimit {
                node,
                what: e.to_string(),
            },
            other if self.read_secret => {
                let at = other.position();
                let at = match (at.line(), at.position()) {
                    (Some(line), Some(col)) => format!(" at line {line}, position {col}"),
                    (Some(line), None) => format!(" at line {line}"),
                    _ => String::new(),
                };
                RunError::Script {
                    node,
                    message: format!(
                        "the script failed{at}; its message is hidden because this run read a secret"
                    ),
                }
            }
            other => RunError::Script {
                node,
                message: other.to_string(),
            },
        }
    }

    pub fn type_error(&self, message: impl Into<String>) -> RunError {
        RunError::Type {
            node: self.node_id().to_string(),
            message: message.into(),
        }
    }
}

/// `request.body.a.b` → `/body/a/b`: where a value bound as it is came from in the request.
fn request_pointer(path: &str) -> Option<String> {
    let rest = path.strip_prefix("request.")?;
    let mut out = String::new();
    for step in rest.split('.') {
        out.push('/');
        out.push_str(&step.replace('~', "~0").replace('/', "~1"));
    }
    let part = rest.split('.').next().unwrap_or("");
    matches!(part, "body" | "query" | "params").then_some(out)
}

/// Why an inline evaluation did not give a value.
enum Inline {
    /// It outlasted its inline slice and must run again off the async worker.
    Moved,
    Failed(RunError),
}

impl From<RunError> for Inline {
    fn from(e: RunError) -> Inline {
        Inline::Failed(e)
    }
}

/// Values bound to SQL placeholders: text that Postgres casts to the column type.
pub fn bind_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The role `db.sql` statements run as: it can use schema `app` and nothing of Sluice's
/// (migration `0003_app_role.sql`).
pub const APP_ROLE: &str = "sluice_app";

/// Switches the transaction to [`APP_ROLE`] (`set_config('role', …, true)` is `SET LOCAL ROLE`),
/// with `search_path = app`, standard strings (the statement scanner assumes them) and a
/// statement timeout (`$1`, ms). Its first column says whether the switch would be unsafe: a
/// role that may call `set_config` could switch itself back to the session's login within its
/// statement, and one that can use schema `sluice` is not restricted at all (for example when
/// Sluice itself logs in as `sluice_app`).
const ENTER_APP_ROLE: &str = "SELECT has_function_privilege('sluice_app', \
     'pg_catalog.set_config(text,text,boolean)', 'EXECUTE') \
     OR has_schema_privilege('sluice_app', 'sluice', 'USAGE') AS unsafe, \
     set_config('statement_timeout', $1, true), set_config('search_path', 'app', true), \
     set_config('standard_conforming_strings', 'on', true), set_config('role', 'sluice_app', true)";

/// Back to the session's own role and settings after a `db.sql` statement succeeded. `RESET ROLE`
/// is allowed to any role; `set_config` is not, for `sluice_app`.
const LEAVE_APP_ROLE: &str = "RESET ROLE; RESET search_path; RESET standard_conforming_strings; \
     RESET statement_timeout; RELEASE SAVEPOINT sluice_sql";

/// Undoes a failed `db.sql` statement and, with it, the role switch.
const ABANDON_APP_ROLE: &str = "ROLLBACK TO SAVEPOINT sluice_sql; RELEASE SAVEPOINT sluice_sql";

/// Why a `db.sql` statement did not run.
pub enum AppSqlError {
    /// The role switch failed or would be unsafe; the detail is for the log.
    Unavailable(String),
    Statement(sqlx::Error),
    /// The result is larger than the cap.
    TooLarge(Option<usize>),
}

/// Why a statement's JSON result could not be read.
pub enum ReadError {
    Db(sqlx::Error),
    /// Larger than the cap (its size when known).
    TooLarge(Option<usize>),
}

impl From<sqlx::Error> for ReadError {
    fn from(e: sqlx::Error) -> ReadError {
        ReadError::Db(e)
    }
}

/// The JSON value in the first column of `row` (`None` for SQL `NULL`), refused when its text
/// is longer than `cap` bytes, before it is parsed. A large one is parsed on the blocking pool.
async fn read_json(row: sqlx::postgres::PgRow, cap: usize) -> Result<Option<Value>, ReadError> {
    use sqlx::{Row, ValueRef};
    fn text(row: &sqlx::postgres::PgRow) -> Result<Option<&[u8]>, sqlx::Error> {
        let raw = row.try_get_raw(0)?;
        if raw.is_null() {
            return Ok(None);
        }
        // jsonb in binary format is a version byte (1) and the JSON text; json is its text.
        let jsonb_binary = matches!(raw.format(), sqlx::postgres::PgValueFormat::Binary)
            && sqlx::TypeInfo::name(&*raw.type_info()) == "JSONB";
        let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
        Ok(Some(if jsonb_binary {
            bytes.get(1..).unwrap_or_default()
        } else {
            bytes
        }))
    }
    fn parse(text: &[u8]) -> Result<Value, sqlx::Error> {
        serde_json::from_slice(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }
    match text(&row)? {
        None => return Ok(None),
        Some(t) if t.len() > cap => return Err(ReadError::TooLarge(Some(t.len()))),
        Some(t) if t.len() <= PARSE_INLINE_MAX => return Ok(Some(parse(t)?)),
        Some(_) => {}
    }
    let parsed = tokio::task::spawn_blocking(move || match text(&row)? {
        Some(t) => parse(t).map(Some),
        None => Ok(None),
    })
    .await
    .map_err(|e| sqlx::Error::Decode(Box::new(e)))??;
    Ok(parsed)
}

/// query_canceled: the statement timeout fired.
fn is_canceled(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("57014"))
}

/// Runs `$call` (a statement future on `$c`, the `&mut PgConnection` of lane connection
/// `$conn`) so that the connection is closed rather than reused when the statement does not
/// settle cleanly ([`LaneConn::start`]).
macro_rules! on {
    ($conn:expr, |$c:ident| $call:expr) => {{
        let conn: &mut LaneConn = $conn;
        conn.start();
        let $c: &mut sqlx::PgConnection = &mut *conn;
        let result = $call.await;
        conn.settle(&result);
        result
    }};
}

/// The database side of a run: a lane connection per statement for read-only flows, else one
/// lazily opened transaction on one lane connection ([`Lane`]).
pub struct Db {
    lane: Arc<Lane>,
    /// The connection of the request's transaction, once opened.
    tx: Option<LaneConn>,
    /// Whether statements run in the request's transaction (the flow writes).
    pub writes: bool,
    /// Whether the transaction enqueued a job: once it commits, the workers are told
    /// ([`crate::queue::signal`]).
    pub enqueued: bool,
    /// The transaction is `SERIALIZABLE` (`settings.transaction`).
    serializable: bool,
}

impl Db {
    /// A database handle with no transaction, standing in while a call borrows the real one.
    pub fn detached(lane: Arc<Lane>) -> Db {
        Db {
            lane,
            tx: None,
            writes: false,
            enqueued: false,
            serializable: false,
        }
    }

    /// The connection of the request's transaction, opening it (`BEGIN`) on first use.
    async fn tx(&mut self) -> Result<&mut LaneConn, sqlx::Error> {
        if self.tx.is_none() {
            let mut conn = self.lane.take().await?;
            let begin = if self.serializable {
                "BEGIN ISOLATION LEVEL SERIALIZABLE"
            } else {
                "BEGIN"
            };
            on!(&mut conn, |c| c.execute(begin))?;
            self.tx = Some(conn);
        }
        Ok(self.tx.as_mut().unwrap_or_else(|| unreachable!()))
    }

    /// Runs a statement that yields at most one JSON value of at most `cap` bytes.
    pub async fn one(
        &mut self,
        sql: &str,
        binds: Vec<Option<String>>,
        guarded: bool,
        cap: usize,
    ) -> Result<Option<Value>, ReadError> {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(b);
        }
        let row = if !self.writes {
            // Given back as soon as the statement is done: a read-only flow holds no
            // connection while its scripts or outbound calls run.
            let mut conn = self.lane.take().await?;
            on!(&mut conn, |c| q.fetch_optional(c))?
        } else {
            let tx = self.tx().await?;
            if !guarded {
                on!(tx, |c| q.fetch_optional(c))?
            } else {
                on!(tx, |c| c.execute("SAVEPOINT sluice_node"))?;
                match on!(tx, |c| q.fetch_optional(c)) {
                    Ok(row) => {
                        on!(tx, |c| c.execute("RELEASE SAVEPOINT sluice_node"))?;
                        row
                    }
                    Err(e) => {
                        on!(tx, |c| c.execute("ROLLBACK TO SAVEPOINT sluice_node"))?;
                        return Err(e.into());
                    }
                }
            }
        };
        match row {
            Some(row) => read_json(row, cap).await,
            None => Ok(None),
        }
    }

    /// Runs a `db.sql` statement as [`APP_ROLE`] inside the request's transaction (opened here
    /// if need be), in a savepoint: on success the role and settings are reset; on failure the
    /// savepoint is rolled back, which undoes the statement and the role switch together. Either
    /// way the transaction, and the pooled connection after it, is back to Sluice's own role.
    pub async fn as_app(
        &mut self,
        sql: &str,
        binds: Vec<Option<String>>,
        timeout_ms: u128,
        cap: usize,
    ) -> Result<Option<Value>, AppSqlError> {
        let tx = self.tx().await.map_err(AppSqlError::Statement)?;
        on!(tx, |c| c.execute("SAVEPOINT sluice_sql")).map_err(AppSqlError::Statement)?;
        let entered = on!(tx, |c| sqlx::query_scalar::<_, bool>(ENTER_APP_ROLE)
            .bind(timeout_ms.to_string())
            .fetch_one(c));
        let refused = match entered {
            Ok(false) => None,
            Ok(true) => Some(format!(
                "role {APP_ROLE} may call set_config or use schema sluice, so it would not be restricted (see docs/OPERATIONS.md)"
            )),
            Err(e) => Some(format!("cannot switch to role {APP_ROLE}: {e}")),
        };
        if let Some(why) = refused {
            on!(tx, |c| c.execute(ABANDON_APP_ROLE)).map_err(AppSqlError::Statement)?;
            return Err(AppSqlError::Unavailable(why));
        }
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(b);
        }
        match on!(tx, |c| q.fetch_optional(c)) {
            Ok(row) => {
                on!(tx, |c| c.execute(LEAVE_APP_ROLE)).map_err(AppSqlError::Statement)?;
                match row {
                    Some(row) => read_json(row, cap).await.map_err(|e| match e {
                        ReadError::Db(e) => AppSqlError::Statement(e),
                        ReadError::TooLarge(n) => AppSqlError::TooLarge(n),
                    }),
                    None => Ok(None),
                }
            }
            Err(e) => {
                on!(tx, |c| c.execute(ABANDON_APP_ROLE)).map_err(AppSqlError::Statement)?;
                Err(AppSqlError::Statement(e))
            }
        }
    }

    /// Runs `f` on the connection of the run's transaction (opening it), so what it writes
    /// commits or rolls back with the run's other writes (`job.enqueue`).
    pub async fn in_tx<T>(
        &mut self,
        f: impl for<'c> FnOnce(
            &'c mut sqlx::PgConnection,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, sqlx::Error>> + Send + 'c>,
        >,
    ) -> Result<T, sqlx::Error> {
        let tx = self.tx().await?;
        on!(tx, |c| f(c))
    }

    /// Ends the transaction of a job's run: when it is to commit, the fence runs in it first
    /// and the transaction commits only if the fence says yes. Returns the fence's answer, or
    /// `None` when it did not run: not committing, or a run that opened no transaction (it
    /// wrote nothing, so there is nothing to fence; the caller completes the job).
    async fn finish_fenced(
        &mut self,
        commit: bool,
        fence: Fence,
        sink: &Option<std::sync::Mutex<Trace>>,
    ) -> Result<Option<bool>, sqlx::Error> {
        if !commit || self.tx.is_none() {
            self.finish(false).await?;
            return Ok(None);
        }
        let trace = sink
            .as_ref()
            .and_then(|s| s.lock().ok().map(|t| t.snapshot()))
            .unwrap_or(Value::Null);
        let Some(tx) = self.tx.as_mut() else {
            return Ok(None);
        };
        let owned = on!(tx, |c| fence(c, trace))?;
        self.finish(owned).await?;
        Ok(Some(owned))
    }

    async fn finish(&mut self, commit: bool) -> Result<(), sqlx::Error> {
        let Some(mut conn) = self.tx.take() else {
            return Ok(());
        };
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        on!(&mut conn, |c| c.execute(end)).map(|_| ())
    }
}

impl Drop for Db {
    /// A run that ends without [`Db::finish`] (an error, its deadline) rolls its transaction
    /// back before the connection is reused. A connection cut off mid-statement, or one whose
    /// rollback fails, is closed instead, which rolls the transaction back on the server: a
    /// rollback sent after a cut-off statement would first receive that statement's answer.
    fn drop(&mut self) {
        let Some(mut conn) = self.tx.take() else {
            return;
        };
        if conn.is_broken() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if on!(&mut conn, |c| c.execute("ROLLBACK")).is_err() {
                        conn.start();
                    }
                });
            }
            Err(_) => conn.start(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_jobs_concurrency_key_is_computed_from_its_input_and_event() {
        let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "j",
            "trigger": {"kind": "job"}, "entry": "r",
            "settings": {"concurrency": {"limit": 1,
                "key": {"$rhai": "if event == () { input.customer } else { event.op }"}}},
            "nodes": {"r": {"type": "respond", "body": null}}});
        let plan = crate::nodes::compile(&doc, None).expect("compiles");
        let program = Program::build(plan, &Default::default()).expect("builds");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .expect("a lazy pool");
        let outbound = super::super::outbound::Outbound::new(Default::default()).expect("client");
        let rt = Runtime::new(pool, Default::default(), outbound);
        let live = Live::default();
        let key = |input: Value| {
            let (rt, live, program) = (&rt, &live, &program);
            async move { concurrency_key(rt, live, program, &input).await }
        };
        assert_eq!(
            key(json!({"customer": "c7"})).await.ok(),
            Some(Some("c7".into()))
        );
        assert_eq!(
            key(json!({"customer": 7})).await.ok(),
            Some(Some("7".into()))
        );
        assert_eq!(key(json!({"customer": null})).await.ok(), Some(None));
        assert_eq!(
            key(json!({"event": {"op": "insert"}})).await.ok(),
            Some(Some("insert".into()))
        );
        assert!(
            key(json!({})).await.is_err(),
            "a missing property is an error"
        );
    }

    #[tokio::test]
    async fn a_debug_run_of_a_trigger_flow_sees_input_event_and_job() {
        let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "j",
            "trigger": {"kind": "job"}, "entry": "r",
            "nodes": {"r": {"type": "respond", "body": {
                "x": {"$rhai": "input.x"}, "op": {"$rhai": "event.op"},
                "job": {"$rhai": "`${job.flow}#${job.id}/${job.attempt}`"}}}}});
        let plan = crate::nodes::compile(&doc, None).expect("compiles");
        let program = Program::build(plan, &Default::default()).expect("builds");
        // The flow touches no database: the pool is never connected.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .expect("a lazy pool");
        let outbound = super::super::outbound::Outbound::new(Default::default()).expect("client");
        let rt = Runtime::new(pool, Default::default(), outbound);
        let (result, trace) = run_job_traced(
            &program,
            &rt,
            &Live::default(),
            json!({"x": 1, "event": {"op": "insert"}}),
            json!({"id": 9, "attempt": 2, "flow": "j", "scheduled_at": "2030-01-01T00:00:00Z"}),
            RunOptions::default(),
        )
        .await;
        let body = result.expect("answers").body;
        assert_eq!(body, json!({"x": 1, "op": "insert", "job": "j#9/2"}));
        assert_eq!(trace.len(), 1);
    }

    #[test]
    fn scrubbing_hides_every_string_that_holds_a_secret() {
        let token = "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl".to_string();
        let mut v = json!({
            "token": token,
            "header": format!("Bearer {token}"),
            "rows": [{"password": "pw", "note": "pw is short, so only exact matches hide"}],
            "n": 1
        });
        scrub(&mut v, &[token.clone(), "pw".into()]);
        assert_eq!(
            v,
            json!({
                "token": "***",
                "header": "***",
                "rows": [{"password": "***", "note": "pw is short, so only exact matches hide"}],
                "n": 1
            })
        );
    }
}
