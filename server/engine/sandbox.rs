//! The Rhai sandbox that runs compiled expressions and scripts: a raw engine with only the
//! standard packages, `eval` disabled (by the shared parser config), no modules or file access,
//! strict variables, failing on missing properties, explicit limits, and a wall-clock deadline.
//! Limits are set explicitly because Rhai's defaults differ between debug and release builds.

use super::env::Env;
use arc_swap::ArcSwap;
use rhai::packages::{Package, StandardPackage};
use rhai::{Dynamic, Engine};
use std::cell::Cell;
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

thread_local! {
    /// Deadline of the evaluation running on this thread. Evaluations are synchronous, so the
    /// progress callback always sees the deadline of its own evaluation.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The value the progress callback returns to stop an evaluation at its deadline.
pub const DEADLINE_TOKEN: &str = "sluice.deadline";

/// A configured engine plus its limits.
pub struct Sandbox {
    engine: Engine,
    pub limits: ScriptLimits,
}

impl Sandbox {
    pub fn new(limits: ScriptLimits) -> Sandbox {
        Sandbox::with_env(limits, Arc::new(ArcSwap::from_pointee(Env::default())))
    }

    /// A sandbox whose `secret(name)` reads from `env`.
    pub fn with_env(limits: ScriptLimits, env: Arc<ArcSwap<Env>>) -> Sandbox {
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
        engine.on_progress(|ops| {
            if ops % 512 != 0 {
                return None;
            }
            let late = DEADLINE.with(|d| d.get().is_some_and(|t| Instant::now() >= t));
            late.then(|| Dynamic::from(DEADLINE_TOKEN))
        });
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
        engine.register_fn("now", now_rfc3339);
        engine.register_fn("uuid", uuid_v4);
        engine.register_fn(
            "secret",
            move |name: &str| -> Result<String, Box<rhai::EvalAltResult>> {
                env.load()
                    .secrets
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("there is no secret `{name}`").into())
            },
        );
        Sandbox { engine, limits }
    }

    /// Runs `f` with the engine, stopping it at `min(now + timeout, request_deadline)`.
    pub fn with_deadline<T>(&self, request_deadline: Instant, f: impl FnOnce(&Engine) -> T) -> T {
        let deadline = (Instant::now() + self.limits.timeout).min(request_deadline);
        DEADLINE.with(|d| d.set(Some(deadline)));
        let out = f(&self.engine);
        DEADLINE.with(|d| d.set(None));
        out
    }
}

/// `now()`: the current UTC time as RFC 3339 text, which Postgres reads as a timestamp.
fn now_rfc3339() -> String {
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
        let ast = sandbox.engine.compile("loop { }").expect("compiles");
        let far = Instant::now() + Duration::from_secs(60);
        let r = sandbox.with_deadline(far, |e| e.eval_ast::<Dynamic>(&ast));
        match r.map_err(|e| *e) {
            Err(rhai::EvalAltResult::ErrorTerminated(token, _)) => {
                assert_eq!(token.into_string().ok().as_deref(), Some(DEADLINE_TOKEN));
            }
            other => panic!("expected the deadline to stop the loop, got {other:?}"),
        }
    }

    #[test]
    fn huge_strings_and_deep_recursion_are_refused() {
        let sandbox = Sandbox::new(ScriptLimits::default());
        let far = Instant::now() + Duration::from_secs(60);
        let big = sandbox
            .engine
            .compile("let s = \"x\"; loop { s += s; }")
            .expect("compiles");
        assert!(
            sandbox
                .with_deadline(far, |e| e.eval_ast::<Dynamic>(&big))
                .is_err()
        );
        let deep = sandbox
            .engine
            .compile("fn f(n) { f(n + 1) } f(0)")
            .expect("compiles");
        assert!(
            sandbox
                .with_deadline(far, |e| e.eval_ast::<Dynamic>(&deep))
                .is_err()
        );
    }
}
