//! The Rhai sandbox that runs compiled expressions and scripts: a raw engine with only the
//! standard packages, `eval` disabled (by the shared parser config), no modules or file access,
//! strict variables, failing on missing properties, explicit limits, and a wall-clock deadline.
//! Limits are set explicitly because Rhai's defaults differ between debug and release builds.
//!
//! Stopping is sticky: once the deadline or the operations limit fires, every later progress
//! call of that evaluation fails again, and an evaluation that fired ends in that error whatever
//! it returned. Rhai swallows some errors (a `sort` or `dedup` comparator's, a `try`/`catch`
//! around a function), so a single refusal is not enough to stop a script. Those two functions
//! are replaced by ones that pass the comparator's error on, and `sort` by a merge sort that
//! never panics on an inconsistent comparator.
//!
//! It also owns how values cross the boundary: JSON to Rhai and back, and the host functions
//! (`now`, `uuid`, `parse_json`, `to_json`). Rhai's own `sleep` blocks the thread past every
//! deadline and its `parse_json` evaluates Rhai expressions, so both are replaced.
//!
//! An evaluation starts inline on the async worker; one still running after [`INLINE_SLICE`]
//! is stopped, its traces are removed from the scope, and it runs again from the start on a
//! blocking thread, at most [`Sandbox::off_worker_slots`] at once, under the same deadline
//! (waiting for a slot counts against it). The async worker is free meanwhile. The budget
//! lives in a thread-local set around each run, so the progress callback sees its own.

use super::env::Env;
use rhai::packages::{Package, StandardPackage};
use rhai::{AST, Dynamic, Engine, EvalAltResult, FLOAT, INT, ImmutableString, Scope};
use serde_json::Value;
use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Resource limits for one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct ScriptLimits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// Wall-clock limit of one expression or script.
    pub timeout: Duration,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits {
            max_operations: 50_000_000,
            max_call_levels: 48,
            max_string_size: 1 << 20,
            max_array_size: 100_000,
            max_map_size: 10_000,
            timeout: Duration::from_millis(1000),
        }
    }
}

/// How long an evaluation may run inline on an async worker before it is moved off it.
pub const INLINE_SLICE: Duration = Duration::from_micros(500);

/// The clock is read every this many operations (the operations limit is checked on every one,
/// and a stop, once fired, on every one after it).
const CHECK_EVERY: u64 = 32;

/// The state of the evaluation running on this thread.
#[derive(Debug, Clone, Copy)]
struct Budget {
    deadline: Option<Instant>,
    /// Set while running inline on an async worker.
    inline_until: Option<Instant>,
    /// The token that stopped the evaluation; every later progress call returns it again.
    stopped: Option<&'static str>,
    /// Whether the evaluation called `secret(name)`: its errors are then not shown.
    read_secret: bool,
}

impl Budget {
    const IDLE: Budget = Budget {
        deadline: None,
        inline_until: None,
        stopped: None,
        read_secret: false,
    };

    fn until(deadline: Instant) -> Budget {
        Budget {
            deadline: Some(deadline),
            ..Budget::IDLE
        }
    }
}

thread_local! {
    /// The budget of the evaluation running on this thread. Evaluations are synchronous, so
    /// the progress callback sees its own budget.
    static BUDGET: Cell<Budget> = const { Cell::new(Budget::IDLE) };
    /// Operations of the evaluation running on this thread, counted by the progress callback
    /// itself: Rhai drops the operations done inside a closure that a native function calls
    /// (`map`, `filter`, `sort`, ...), so the count it reports can stand still forever. Kept
    /// apart from [`BUDGET`] because it is the only part touched on every operation; a stop
    /// sets it to [`STOPPED`], past every limit, so that every later call looks at the budget.
    static OPERATIONS: Cell<u64> = const { Cell::new(0) };
    /// The environment of the evaluation running on this thread, read by `secret(name)`: each
    /// run passes the one of the generation it serves, so a script never mixes two.
    static SECRETS: RefCell<Option<Arc<Env>>> = const { RefCell::new(None) };
}

/// The operation count of a stopped evaluation.
const STOPPED: u64 = u64::MAX / 2;

/// The value the progress callback returns to stop an evaluation at its deadline.
pub const DEADLINE_TOKEN: &str = "sluice.deadline";

/// The value the progress callback returns when an evaluation used up its operations.
pub const OPERATIONS_TOKEN: &str = "sluice.operations";

/// The value the progress callback returns to move an evaluation off the async worker.
const MOVE_TOKEN: &str = "sluice.move";

/// The progress callback: counts, and says whether (and why) the evaluation must stop.
fn progress(max_operations: u64) -> Option<&'static str> {
    let ops = OPERATIONS.with(|n| {
        let ops = n.get().saturating_add(1);
        n.set(ops);
        ops
    });
    let limit = if max_operations > 0 {
        max_operations.min(STOPPED - 1)
    } else {
        STOPPED - 1
    };
    if !ops.is_multiple_of(CHECK_EVERY) && ops <= limit {
        return None;
    }
    BUDGET.with(|cell| {
        let mut b = cell.get();
        if b.stopped.is_none() {
            b.stopped = if ops > limit {
                Some(OPERATIONS_TOKEN)
            } else if b.deadline.is_none() && b.inline_until.is_none() {
                None
            } else {
                let now = Instant::now();
                if b.deadline.is_some_and(|t| now >= t) {
                    Some(DEADLINE_TOKEN)
                } else if b.inline_until.is_some_and(|t| now >= t) {
                    Some(MOVE_TOKEN)
                } else {
                    None
                }
            };
            if b.stopped.is_some() {
                cell.set(b);
                OPERATIONS.with(|n| n.set(STOPPED));
            }
        }
        b.stopped
    })
}

/// A configured engine plus its limits.
pub struct Sandbox {
    engine: Arc<Engine>,
    pub limits: ScriptLimits,
    /// Evaluations running on blocking threads, at most [`Sandbox::off_worker_slots`].
    slots: Arc<tokio::sync::Semaphore>,
}

impl Sandbox {
    /// How many evaluations may run off the async workers at once: one per core (at least
    /// two). More would only share the same cores, slower each, with the async workers.
    pub fn off_worker_slots() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
    }

    /// A sandbox whose `secret(name)` reads the environment each evaluation is given.
    pub fn new(limits: ScriptLimits) -> Sandbox {
        let mut engine = crate::flow::expr::base_engine();
        engine.register_global_module(StandardPackage::new().as_shared_module());
        engine
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_max_variables(1_000)
            .set_max_functions(100);
        let max_operations = limits.max_operations;
        engine.on_progress(move |_| progress(max_operations).map(Dynamic::from));
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
        // Functions registered on the engine are found before the standard package's.
        engine.register_fn("now", now_rfc3339);
        engine.register_fn("uuid", uuid_v4);
        engine.register_fn(
            "secret",
            move |name: &str| -> Result<String, Box<rhai::EvalAltResult>> {
                BUDGET.with(|b| {
                    let mut budget = b.get();
                    budget.read_secret = true;
                    b.set(budget);
                });
                SECRETS
                    .with(|s| {
                        s.borrow()
                            .as_ref()
                            .and_then(|env| env.secrets.get(name).cloned())
                    })
                    .ok_or_else(|| format!("there is no secret `{name}`").into())
            },
        );
        engine.register_fn("sleep", |_: INT| -> Result<(), Box<EvalAltResult>> {
            Err(NO_SLEEP.into())
        });
        engine.register_fn("sleep", |_: FLOAT| -> Result<(), Box<EvalAltResult>> {
            Err(NO_SLEEP.into())
        });
        engine.register_fn("parse_json", parse_json);
        engine.register_fn("to_json", |v: Dynamic| to_json_text(&v));
        // Rhai's own `to_json` for maps would win over the `Dynamic` one by its exact type.
        engine.register_fn("to_json", |m: &mut rhai::Map| {
            to_json_text(&Dynamic::from_map(m.clone()))
        });
        // Rhai's `sort` and `dedup` with a function ignore the function's errors.
        engine.register_fn("sort", sort_by);
        engine.register_fn("sort_by", sort_by);
        engine.register_fn("dedup", dedup_by);
        Sandbox {
            engine: Arc::new(engine),
            limits,
            slots: Arc::new(tokio::sync::Semaphore::new(Sandbox::off_worker_slots())),
        }
    }

    /// Runs `f` inline with the engine, stopping it at `min(now + timeout, request_deadline)`.
    /// The result of `f` is replaced by the stop when one fired, however `f` ended.
    pub fn with_deadline<T>(
        &self,
        request_deadline: Instant,
        f: impl FnOnce(&Engine) -> Result<T, Box<EvalAltResult>>,
    ) -> Result<T, Box<EvalAltResult>> {
        let deadline = (Instant::now() + self.limits.timeout).min(request_deadline);
        with_budget(Budget::until(deadline), || f(&self.engine)).0
    }

    /// Evaluates `ast` against `scope`, stopping it at `min(now + timeout, request_deadline)`.
    /// A script (`script: true`) may declare variables; they are dropped when it ends.
    ///
    /// The evaluation starts inline ([`Sandbox::eval_inline`]); one that outlasts
    /// [`INLINE_SLICE`] runs again from the start off the async worker
    /// ([`Sandbox::eval_off_worker`]).
    pub async fn eval_ast(
        &self,
        request_deadline: Instant,
        scope: &mut Scope<'static>,
        ast: &Arc<AST>,
        script: bool,
        env: &Arc<Env>,
        read_secret: &mut bool,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        match self.eval_inline(request_deadline, scope, ast, script, env, read_secret) {
            Err(e) if is_moved(&e) => {
                self.eval_off_worker(request_deadline, scope, ast, script, env, read_secret)
                    .await
            }
            done => done,
        }
    }

    /// Evaluates `ast` on this thread for at most [`INLINE_SLICE`]. An evaluation that needs
    /// longer is stopped with an error for which [`is_moved`] holds, and what it left in
    /// `scope` is removed: running it again from the start ([`Sandbox::eval_off_worker`])
    /// gives what it would have given. An evaluation sees only constants, and its only effects
    /// are its own variables (rewound) and keys that Rhai lets an assignment add to a constant
    /// map ([`remove_added_keys`]), apart from the clock and the random generator.
    /// `read_secret` is set when the evaluation called `secret(name)`.
    pub fn eval_inline(
        &self,
        request_deadline: Instant,
        scope: &mut Scope<'_>,
        ast: &AST,
        script: bool,
        env: &Arc<Env>,
        read_secret: &mut bool,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let now = Instant::now();
        let budget = Budget {
            inline_until: Some(now + INLINE_SLICE),
            ..Budget::until((now + self.limits.timeout).min(request_deadline))
        };
        let (result, secret) = eval_once(&self.engine, budget, env, scope, ast, script);
        *read_secret |= secret;
        if matches!(&result, Err(e) if is_moved(e)) {
            remove_added_keys(scope);
        }
        result
    }

    /// Evaluates `ast` on a blocking thread, once one of the [`Sandbox::off_worker_slots`]
    /// is free, stopping it at `min(now + timeout, request_deadline)`; the wait for a slot
    /// counts against that deadline. `scope` travels to the thread and back.
    pub async fn eval_off_worker(
        &self,
        request_deadline: Instant,
        scope: &mut Scope<'static>,
        ast: &Arc<AST>,
        script: bool,
        env: &Arc<Env>,
        read_secret: &mut bool,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let deadline = (Instant::now() + self.limits.timeout).min(request_deadline);
        let engine = self.engine.clone();
        let env = env.clone();
        let ast = ast.clone();
        let mut owned = std::mem::take(scope);
        let job = move || {
            // A panic inside Rhai must not lose the scope: the flow may handle the error.
            let (result, secret) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                eval_once(
                    &engine,
                    Budget::until(deadline),
                    &env,
                    &mut owned,
                    &ast,
                    script,
                )
            }))
            // A panic inside Rhai may have followed a secret read: assume it did.
            .unwrap_or_else(|_| (Err("the evaluation failed inside the engine".into()), true));
            (result, secret, owned)
        };
        match self.off_worker(deadline, job).await {
            Some((result, secret, owned)) => {
                *scope = owned;
                *read_secret |= secret;
                result
            }
            None => Err(terminated(DEADLINE_TOKEN)),
        }
    }

    /// Runs `job` on a blocking thread once one of the [`Sandbox::off_worker_slots`] is free;
    /// `None` when no slot was free before `deadline` (or the runtime is shutting down). The
    /// job must end by itself, under its own budget: it is never interrupted.
    pub async fn off_worker<T: Send + 'static>(
        &self,
        deadline: Instant,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let wait =
                    tokio::time::timeout_at(deadline.into(), self.slots.clone().acquire_owned());
                let Ok(Ok(slot)) = wait.await else {
                    return None;
                };
                slot
            }
        };
        let done = tokio::task::spawn_blocking(move || {
            let out = job();
            drop(slot);
            out
        });
        // Only a runtime shutting down cancels a blocking task; a panic is the job's to catch.
        done.await.ok()
    }
}

/// One evaluation of `ast` under `budget`; a script's variables are dropped when it ends.
/// `secret(name)` reads `env`. Also says whether it read a secret.
fn eval_once(
    engine: &Engine,
    budget: Budget,
    env: &Arc<Env>,
    scope: &mut Scope<'_>,
    ast: &AST,
    script: bool,
) -> (Result<Dynamic, Box<EvalAltResult>>, bool) {
    let len = scope.len();
    let _secrets = SecretsOf::set(env);
    let result = with_budget(budget, || engine.eval_ast_with_scope::<Dynamic>(scope, ast));
    if script {
        scope.rewind(len);
    }
    result
}

/// Makes `env` the one `secret(name)` reads on this thread until dropped, also when the
/// evaluation panics (so a blocking thread keeps no environment of an earlier run).
struct SecretsOf(Option<Arc<Env>>);

impl SecretsOf {
    fn set(env: &Arc<Env>) -> SecretsOf {
        SecretsOf(SECRETS.with(|s| s.replace(Some(env.clone()))))
    }
}

impl Drop for SecretsOf {
    fn drop(&mut self) {
        let before = self.0.take();
        let _ = SECRETS.try_with(|s| s.replace(before));
    }
}

/// Whether an evaluation was stopped to move it off the async worker.
pub fn is_moved(e: &EvalAltResult) -> bool {
    is_token(e, MOVE_TOKEN)
}

fn terminated(token: &'static str) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(token), rhai::Position::NONE).into()
}

/// The outcome of a comparator, as Rhai's own `sort` reads it: a number's sign (an integer or,
/// unlike Rhai's, a float), or a boolean (`true`: the first goes first).
fn ordering(v: &Dynamic) -> Result<std::cmp::Ordering, Box<EvalAltResult>> {
    use std::cmp::Ordering;
    if let Ok(i) = v.as_int() {
        return Ok(i.cmp(&0));
    }
    if let Ok(f) = v.as_float()
        && let Some(o) = f.partial_cmp(&0.0)
    {
        return Ok(o);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(if b { Ordering::Less } else { Ordering::Greater });
    }
    Err(format!(
        "a sort comparator must return a number or a boolean, not {}",
        v.type_name()
    )
    .into())
}

/// `array.sort(f)` / `array.sort_by(f)`: a stable merge sort (over indices) whose comparator's
/// first error ends the sort and is returned. Unlike `slice::sort_by`, it cannot panic on a
/// comparator that is not a total order; it simply gives some order.
fn sort_by(
    ctx: rhai::NativeCallContext,
    array: &mut rhai::Array,
    f: rhai::FnPtr,
) -> Result<(), Box<EvalAltResult>> {
    let n = array.len();
    if n <= 1 {
        return Ok(());
    }
    let cmp = |a: usize, b: usize| -> Result<bool, Box<EvalAltResult>> {
        let out = f.call_raw(&ctx, None, [array[a].clone(), array[b].clone()])?;
        Ok(ordering(&out)? == std::cmp::Ordering::Greater)
    };
    let mut src: Vec<usize> = (0..n).collect();
    let mut dst = vec![0; n];
    let mut width = 1;
    while width < n {
        for start in (0..n).step_by(2 * width) {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut i, mut j) = (start, mid);
            for slot in &mut dst[start..end] {
                // Ties keep the left run's element first: the sort is stable.
                let right = j < end && (i >= mid || cmp(src[i], src[j])?);
                if right {
                    *slot = src[j];
                    j += 1;
                } else {
                    *slot = src[i];
                    i += 1;
                }
            }
        }
        std::mem::swap(&mut src, &mut dst);
        width *= 2;
    }
    let mut items: Vec<Dynamic> = array.iter_mut().map(std::mem::take).collect();
    for (slot, from) in array.iter_mut().zip(src) {
        *slot = std::mem::take(&mut items[from]);
    }
    Ok(())
}

/// `array.dedup(f)`: removes each element for which `f(previous kept, element)` is true; the
/// first error of `f` ends it, leaving the array as it was, and is returned.
fn dedup_by(
    ctx: rhai::NativeCallContext,
    array: &mut rhai::Array,
    f: rhai::FnPtr,
) -> Result<(), Box<EvalAltResult>> {
    let mut kept: rhai::Array = Vec::with_capacity(array.len());
    for item in array.iter() {
        if let Some(last) = kept.last() {
            let same = f.call_raw(&ctx, None, [last.clone(), item.clone()])?;
            if same.as_bool().unwrap_or(false) {
                continue;
            }
        }
        kept.push(item.clone());
    }
    *array = kept;
    Ok(())
}

/// Undoes what a stopped evaluation may have left in `scope`. Constants are read-only all the
/// way down (`push_constant_dynamic` marks every nested value), yet Rhai lets an assignment add
/// a *new* key to a read-only map (`env.x = 1`), holding a writable value. Those writable
/// values inside read-only maps are exactly the additions; the scope is rebuilt without them.
/// Only called when an evaluation is moved, and cheap when nothing was added.
pub fn remove_added_keys(scope: &mut Scope<'_>) {
    if !scope.iter_raw().any(|(_, _, v)| has_added_keys(v)) {
        return;
    }
    let entries: Vec<(String, bool, Dynamic)> = scope
        .iter_raw()
        .map(|(name, constant, v)| (name.to_string(), constant, without_added_keys(v)))
        .collect();
    scope.clear();
    for (name, constant, value) in entries {
        if constant {
            scope.push_constant_dynamic(name, value);
        } else {
            scope.push_dynamic(name, value);
        }
    }
}

/// A writable value in a read-only map: a key added by an assignment.
fn added(map: &Dynamic, value: &Dynamic) -> bool {
    map.is_read_only() && !value.is_read_only()
}

fn has_added_keys(v: &Dynamic) -> bool {
    if let Ok(map) = v.as_map_ref() {
        map.values().any(|c| added(v, c) || has_added_keys(c))
    } else if let Ok(items) = v.as_array_ref() {
        items.iter().any(has_added_keys)
    } else {
        false
    }
}

fn without_added_keys(v: &Dynamic) -> Dynamic {
    if let Ok(map) = v.as_map_ref() {
        let kept = map
            .iter()
            .filter(|(_, c)| !added(v, c))
            .map(|(k, c)| (k.clone(), without_added_keys(c)))
            .collect();
        Dynamic::from_map(kept)
    } else if let Ok(items) = v.as_array_ref() {
        Dynamic::from_array(items.iter().map(without_added_keys).collect())
    } else {
        v.clone()
    }
}

/// Runs `f` under `budget`; when a stop fired, it is the result, whatever `f` returned (Rhai
/// may have swallowed it on the way out). Also says whether `f` read a secret.
fn with_budget<T>(
    budget: Budget,
    f: impl FnOnce() -> Result<T, Box<EvalAltResult>>,
) -> (Result<T, Box<EvalAltResult>>, bool) {
    let before = BUDGET.with(|b| b.replace(budget));
    let ops_before = OPERATIONS.with(|n| n.replace(0));
    let out = f();
    let after = BUDGET.with(|b| b.replace(before));
    OPERATIONS.with(|n| n.set(ops_before));
    let out = match after.stopped {
        Some(token) if !matches!(&out, Err(e) if is_token(e, token)) => Err(terminated(token)),
        _ => out,
    };
    (out, after.read_secret)
}

/// Whether an evaluation error is the progress callback's `token`, looking through the calls
/// of script functions that may wrap it.
pub fn is_token(e: &EvalAltResult, token: &str) -> bool {
    match e {
        EvalAltResult::ErrorTerminated(t, _) => t
            .read_lock::<ImmutableString>()
            .is_some_and(|s| s.as_str() == token),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => is_token(inner, token),
        _ => false,
    }
}

const NO_SLEEP: &str = "sleep is not available: a script must not block its thread";

/// JSON as Rhai sees it: `null` is `()`, integers that fit i64 are `INT`, other numbers
/// `FLOAT`, objects are maps. The same mapping as `rhai::serde::to_dynamic`, without serde.
pub fn to_dynamic(v: Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Dynamic::from(s),
        Value::Array(items) => Dynamic::from_array(items.into_iter().map(to_dynamic).collect()),
        Value::Object(map) => Dynamic::from_map(
            map.into_iter()
                .map(|(k, v)| (k.into(), to_dynamic(v)))
                .collect(),
        ),
    }
}

/// [`to_dynamic`] of a borrowed value (the same conversion, copying strings).
pub fn to_dynamic_ref(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => Dynamic::from_array(items.iter().map(to_dynamic_ref).collect()),
        Value::Object(map) => Dynamic::from_map(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), to_dynamic_ref(v)))
                .collect(),
        ),
    }
}

/// A Rhai value as JSON: `()` is `null`, characters are strings, non-finite floats are `null`
/// (as `rhai::serde::from_dynamic` gives). Values with no JSON form (functions, timestamps,
/// BLOBs, custom types) are an error whose text is serde's.
pub fn to_json(d: &Dynamic) -> Result<Value, String> {
    match plain_json(d) {
        Some(v) => Ok(v),
        // The rare value this fast path does not know: serde decides, and words the error.
        None => rhai::serde::from_dynamic::<Value>(d).map_err(|e| e.to_string()),
    }
}

fn plain_json(d: &Dynamic) -> Option<Value> {
    if d.is_shared() {
        return None;
    }
    let t = d.type_id();
    Some(if t == TypeId::of::<()>() {
        Value::Null
    } else if t == TypeId::of::<bool>() {
        Value::Bool(d.as_bool().ok()?)
    } else if t == TypeId::of::<INT>() {
        Value::from(d.as_int().ok()?)
    } else if t == TypeId::of::<FLOAT>() {
        serde_json::Number::from_f64(d.as_float().ok()?).map_or(Value::Null, Value::Number)
    } else if t == TypeId::of::<ImmutableString>() {
        Value::String(d.as_immutable_string_ref().ok()?.as_str().to_owned())
    } else if t == TypeId::of::<char>() {
        Value::String(d.as_char().ok()?.to_string())
    } else if t == TypeId::of::<rhai::Array>() {
        let items = d.as_array_ref().ok()?;
        Value::Array(items.iter().map(plain_json).collect::<Option<_>>()?)
    } else if t == TypeId::of::<rhai::Map>() {
        let map = d.as_map_ref().ok()?;
        Value::Object(
            map.iter()
                .map(|(k, v)| Some((k.to_string(), plain_json(v)?)))
                .collect::<Option<_>>()?,
        )
    } else {
        return None;
    })
}

/// `parse_json(text)`: any JSON text as a value. Text longer than the string limit is refused;
/// the result is held to the array, map and string limits like any other value.
fn parse_json(ctx: rhai::NativeCallContext, text: &str) -> Result<Dynamic, Box<EvalAltResult>> {
    let max = ctx.engine().max_string_size();
    if max > 0 && text.len() > max {
        return Err(EvalAltResult::ErrorDataTooLarge(
            "Length of string".into(),
            ctx.call_position(),
        )
        .into());
    }
    serde_json::from_str::<Value>(text)
        .map(to_dynamic)
        .map_err(|e| format!("parse_json: {e}").into())
}

/// `to_json(value)`: compact JSON text; a value with no JSON form is an error.
fn to_json_text(v: &Dynamic) -> Result<String, Box<EvalAltResult>> {
    let json = to_json(v).map_err(|e| format!("to_json: {e}"))?;
    Ok(json.to_string())
}

/// `now()`: the current UTC time as RFC 3339 text, which Postgres reads as a timestamp; the
/// environment's frozen clock when it has one (a debug run or flow test that gives `now`).
fn now_rfc3339() -> String {
    let frozen = SECRETS
        .try_with(|s| s.borrow().as_ref().and_then(|env| env.now.clone()))
        .ok()
        .flatten();
    if let Some(now) = frozen {
        return now;
    }
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(since.as_secs() as i64, since.subsec_millis())
}

/// Unix seconds and milliseconds as RFC 3339 UTC text.
pub fn format_rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `uuid()`: a random (version 4) UUID.
fn uuid_v4() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    fn run(sandbox: &Sandbox, src: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let ast = sandbox.engine.compile(src).expect("compiles");
        sandbox.with_deadline(far(), |e| e.eval_ast::<Dynamic>(&ast))
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(1_795_737_600, 5), "2026-11-27T00:00:00.005Z");
        assert_eq!(format_rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn uuids_have_version_and_variant_bits() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn an_endless_loop_stops_at_the_deadline() {
        let sandbox = Sandbox::new(ScriptLimits {
            timeout: Duration::from_millis(50),
            ..Default::default()
        });
        for src in [
            "loop { }",
            "fn f() { loop { } } f()",
            "[1].map(|x| { loop { } })",
        ] {
            let e = run(&sandbox, src).expect_err("stopped");
            assert!(is_token(&e, DEADLINE_TOKEN), "{src}: {e:?}");
        }
    }

    /// Rhai forgets the operations done in a closure called by a native function, so its own
    /// count (and its operations limit) can stand still; ours cannot.
    #[test]
    fn closures_called_by_native_functions_still_count_and_stop() {
        let slow = Sandbox::new(ScriptLimits {
            timeout: Duration::from_millis(50),
            ..Default::default()
        });
        let src =
            "blob(100000).to_array().map(|x| blob(100000).to_array().map(|y| y + 1).len()).len()";
        let e = run(&slow, src).expect_err("stopped");
        assert!(is_token(&e, DEADLINE_TOKEN), "{e:?}");
        let few = Sandbox::new(ScriptLimits {
            max_operations: 10_000,
            ..Default::default()
        });
        let e = run(&few, "blob(100000).to_array().map(|x| x + 1).len()").expect_err("stopped");
        assert!(is_token(&e, OPERATIONS_TOKEN), "{e:?}");
    }

    /// Rhai's own `sort` and `dedup` ignore their comparator's errors, and `catch` takes a
    /// function's: a stop that fires inside them must still end the script, and stay fired.
    #[test]
    fn stops_hold_inside_comparators_and_catch() {
        let sandbox = Sandbox::new(ScriptLimits {
            timeout: Duration::from_millis(50),
            ..Default::default()
        });
        for src in [
            "let a = []; for i in 0..200 { a.push(200 - i) } loop { a.sort(|x, y| { let n = 0; while n < 10 { n += 1 } x - y }) }",
            "let a = []; for i in 0..200 { a.push(i % 3) } loop { a.dedup(|x, y| { let n = 0; while n < 10 { n += 1 } x == y }) }",
            "let a = [3, 1, 2]; loop { a.sort_by(|x, y| { loop { } }) }",
            "fn f() { loop { } } loop { try { f() } catch { } }",
            "fn f() { loop { } } try { f() } catch { } 42",
        ] {
            let started = Instant::now();
            let e = run(&sandbox, src).expect_err("stopped");
            assert!(is_token(&e, DEADLINE_TOKEN), "{src}: {e:?}");
            assert!(started.elapsed() < Duration::from_secs(10), "{src}");
        }
        let few = Sandbox::new(ScriptLimits {
            max_operations: 10_000,
            ..Default::default()
        });
        let e = run(&few, "let a = [3, 1, 2]; loop { a.sort(|x, y| x - y) }").expect_err("stop");
        assert!(is_token(&e, OPERATIONS_TOKEN), "{e:?}");
    }

    #[test]
    fn sort_and_dedup_pass_their_comparators_errors_on() {
        let sandbox = Sandbox::new(ScriptLimits::default());
        let e = run(&sandbox, "[2, 1].sort(|x, y| throw \"boom\")").expect_err("thrown");
        assert!(e.to_string().contains("boom"), "{e}");
        let e = run(&sandbox, "[1, 1].dedup(|x, y| throw \"bang\")").expect_err("thrown");
        assert!(e.to_string().contains("bang"), "{e}");
        let e = run(&sandbox, "[2, 1].sort(|x, y| \"x\")").expect_err("not a number");
        assert!(e.to_string().contains("number or a boolean"), "{e}");
    }

    #[test]
    fn sort_and_dedup_give_rhais_answers() {
        let sandbox = Sandbox::new(ScriptLimits::default());
        for (src, want) in [
            (
                "let a = [3, 1, 2]; a.sort(|x, y| x - y); a",
                serde_json::json!([1, 2, 3]),
            ),
            (
                "let a = [3, 1, 2]; a.sort(|x, y| y - x); a",
                serde_json::json!([3, 2, 1]),
            ),
            (
                "let a = [1.5, -2.0, 0.25]; a.sort(|x, y| x - y); a",
                serde_json::json!([-2.0, 0.25, 1.5]),
            ),
            (
                "let a = [3, 1, 2]; a.sort_by(|x, y| x < y); a",
                serde_json::json!([1, 2, 3]),
            ),
            // Stable: equal keys keep their order.
            (
                "let a = [#{k: 1, n: \"a\"}, #{k: 0, n: \"b\"}, #{k: 1, n: \"c\"}, #{k: 0, n: \"d\"}]; a.sort(|x, y| x.k - y.k); a.map(|x| x.n)",
                serde_json::json!(["b", "d", "a", "c"]),
            ),
            (
                "let a = [1, 1, 2, 2, 2, 3, 1]; a.dedup(|x, y| x == y); a",
                serde_json::json!([1, 2, 3, 1]),
            ),
            (
                "let a = [1, 2, 4, 5, 9]; a.dedup(|p, x| x - p == 1); a",
                serde_json::json!([1, 4, 9]),
            ),
            (
                "let a = []; a.sort(|x, y| x - y); a.dedup(|x, y| x == y); a",
                serde_json::json!([]),
            ),
        ] {
            let v = run(&sandbox, src).expect(src);
            assert_eq!(to_json(&v), Ok(want), "{src}");
        }
    }

    #[test]
    fn a_comparator_sort_of_ten_thousand_moves_off_the_worker_and_sorts() {
        let (v, _) = on_worker(
            "let a = []; for i in 0..10000 { a.push((i * 7919) % 10000) } a.sort(|x, y| x - y); let ok = true; for i in 0..10000 { if a[i] != i { ok = false } } ok",
        );
        assert_eq!(v.map(|d| d.as_bool()), Ok(Ok(true)));
    }

    #[test]
    fn huge_strings_and_deep_recursion_are_refused() {
        let sandbox = Sandbox::new(ScriptLimits::default());
        assert!(run(&sandbox, "let s = \"x\"; loop { s += s; }").is_err());
        assert!(run(&sandbox, "fn f(n) { f(n + 1) } f(0)").is_err());
    }

    #[test]
    fn sleep_is_refused_rather_than_blocking_the_thread() {
        let sandbox = Sandbox::new(ScriptLimits::default());
        for src in [
            "sleep(100000)",
            "sleep(1e300)",
            "Fn(\"sleep\").call(100000)",
        ] {
            let e = run(&sandbox, src).expect_err("refused");
            assert!(
                e.to_string().contains("sleep is not available"),
                "{src}: {e}"
            );
        }
    }

    #[test]
    fn json_helpers_take_data_only_and_respect_the_limits() {
        let sandbox = Sandbox::new(ScriptLimits::default());
        let v = run(
            &sandbox,
            "parse_json(`[1, 2.5, \"x\", null, {\"a\": true}]`)",
        )
        .expect("parses");
        assert_eq!(
            to_json(&v),
            Ok(serde_json::json!([1, 2.5, "x", null, {"a": true}]))
        );
        let text = run(&sandbox, "to_json(#{b: [1, ()], a: \"\\u00e9\"})").expect("prints");
        assert_eq!(
            text.into_string().as_deref(),
            Ok(r#"{"a":"é","b":[1,null]}"#)
        );
        // Rhai's own `parse_json` would have evaluated this as an expression.
        assert!(run(&sandbox, "parse_json(`{\"a\": 1 + 2}`)").is_err());
        let e = run(
            &sandbox,
            "let s = \"[\"; s.pad(1000001, \"0,\"); s += \"0]\"; parse_json(s)",
        )
        .expect_err("too many elements");
        assert!(matches!(*e, EvalAltResult::ErrorDataTooLarge(..)), "{e:?}");
        assert!(run(&sandbox, "to_json(Fn(\"f\"))").is_err());
    }

    #[test]
    fn values_cross_the_boundary_as_serde_would_carry_them() {
        let values = serde_json::json!([null, true, 0, -7, 9_223_372_036_854_775_807_i64,
            18_446_744_073_709_551_615_u64, 1.5, -0.25, "", "é\u{0}x", [], {}, [1, [2, {"a": [null]}]],
            {"z": 1, "a": {"b": "c"}, "": []}]);
        for v in values.as_array().into_iter().flatten() {
            let ours = to_dynamic(v.clone());
            // `Plain`: serde_json's exact numbers reach other serializers as a private struct.
            let theirs =
                rhai::serde::to_dynamic(crate::tables::decimal::Plain(v)).expect("serde converts");
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{v}");
            assert_eq!(
                to_json(&ours),
                rhai::serde::from_dynamic::<Value>(&ours).map_err(|e| e.to_string()),
                "{v}"
            );
        }
        for d in [
            Dynamic::from_char('x'),
            Dynamic::from_float(f64::NAN),
            Dynamic::from_float(f64::INFINITY),
            Dynamic::from_blob(vec![1, 2]),
            Dynamic::from(rhai::FnPtr::new("f").expect("fn ptr")),
            Dynamic::from_array(vec![Dynamic::from_char('y'), Dynamic::from(Instant::now())]),
        ] {
            assert_eq!(
                to_json(&d),
                rhai::serde::from_dynamic::<Value>(&d).map_err(|e| e.to_string()),
                "{d:?}"
            );
        }
    }

    /// Compiles as the flow compiler does: the names are variables at compile time (with
    /// constants, Rhai's optimizer inlines them, and `constant.x = 1` then panics in Rhai).
    fn compiled(src: &str, names: &[&str]) -> AST {
        let mut scope = Scope::new();
        for n in names {
            scope.push_dynamic(*n, Dynamic::UNIT);
        }
        crate::flow::expr::base_engine()
            .compile_with_scope(&scope, src)
            .expect("compiles")
    }

    /// Runs `src` as a script on a one-worker multi-threaded runtime, from a spawned task
    /// (as the server does), with a constant `env` map; returns the value and `env` after.
    fn on_worker(src: &'static str) -> (Result<Dynamic, String>, Dynamic) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            tokio::spawn(async move {
                // A generous wall-clock limit: this test is about where the script runs, and a
                // loaded machine must not turn it into a timeout.
                let sandbox = Sandbox::new(ScriptLimits {
                    timeout: Duration::from_secs(60),
                    ..ScriptLimits::default()
                });
                let ast = compiled(src, &["env"]);
                let mut scope = Scope::new();
                scope.push_constant_dynamic("env", Dynamic::from_map(rhai::Map::new()));
                let out = sandbox
                    .eval_ast(
                        far(),
                        &mut scope,
                        &Arc::new(ast),
                        true,
                        &Arc::default(),
                        &mut false,
                    )
                    .await
                    .map_err(|e| e.to_string());
                let env = scope.get_value::<Dynamic>("env").unwrap_or_default();
                (out, env)
            })
            .await
            .expect("the task ends")
        })
    }

    #[test]
    fn secret_reads_the_environment_each_evaluation_is_given() {
        let sandbox = Sandbox::new(ScriptLimits::default());
        let ast = compiled("secret(\"KEY\")", &[]);
        let env = |v: &str| Arc::new(Env::from_entries(vec![("KEY".into(), v.into(), true)]));
        let read = |env: &Arc<Env>| {
            let mut read_secret = false;
            let out = sandbox
                .eval_inline(far(), &mut Scope::new(), &ast, false, env, &mut read_secret)
                .map(|d| d.to_string())
                .map_err(|e| e.to_string());
            assert!(read_secret);
            out
        };
        assert_eq!(read(&env("old")), Ok("old".into()));
        assert_eq!(read(&env("new")), Ok("new".into()));
        let none = read(&Arc::default()).expect_err("no secret");
        assert!(none.contains("there is no secret `KEY`"), "{none}");
    }

    #[test]
    fn a_slow_evaluation_moves_off_the_worker_and_gives_the_same_answer() {
        let (n, _) = on_worker("let n = 0; for i in 0..200000 { n += i; } n");
        assert_eq!(n.map(|d| d.as_int()), Ok(Ok(19_999_900_000)));
        let (n, _) = on_worker("40 + 2");
        assert_eq!(n.map(|d| d.as_int()), Ok(Ok(42)));
        // The first, stopped run added `env.x`; the second must not see it.
        let (n, env) = on_worker(
            "if \"x\" in env { throw \"the second run saw the first\" } env.x = 1; let n = 0; for i in 0..200000 { n += i; } n",
        );
        assert_eq!(n.map(|d| d.as_int()), Ok(Ok(19_999_900_000)));
        assert_eq!(format!("{env:?}"), "#{\"x\": 1}");
    }

    #[test]
    fn added_keys_are_told_apart_from_constants() {
        let mut scope = Scope::new();
        let body = serde_json::json!({"a": {"b": [1, {"c": 2}]}});
        scope.push_constant_dynamic("request", to_dynamic(body.clone()));
        scope.push_dynamic("local", to_dynamic(serde_json::json!({"k": 1})));
        let ast = compiled(
            "request.a.added = #{d: 1}; request.a.b[1].e = 3; local.z = 2;",
            &["request", "local"],
        );
        let engine = crate::flow::expr::base_engine();
        engine
            .run_ast_with_scope(&mut scope, &ast)
            .expect("Rhai lets these through");
        let dump = |scope: &Scope<'_>| format!("{:?}", scope.get_value::<Dynamic>("request"));
        assert_ne!(
            dump(&scope),
            format!("{:?}", Some(to_dynamic(body.clone())))
        );
        remove_added_keys(&mut scope);
        assert_eq!(dump(&scope), format!("{:?}", Some(to_dynamic(body))));
        assert_eq!(scope.is_constant("request"), Some(true));
        // Variables are not constants: what a script does to its own is kept.
        let local = scope.get_value::<Dynamic>("local").expect("local");
        assert_eq!(format!("{local:?}"), "#{\"k\": 1, \"z\": 2}");
    }
}
