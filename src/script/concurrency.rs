//! `parallel(items, f)`, `parallel(items, max, f)` and `wait_until(...)`.
//!
//! `parallel` calls a script function from several threads at once (the engine's `sync`
//! feature makes that sound). Each call sees its own copy of the variables the function
//! captured, so calls never race on them: results come back through return values. Each worker recreates
//! the caller's context from a stored copy, takes the next item, and keeps its result at the
//! item's index, so results come back in input order. Ctrl-C stops every call in flight: each
//! one is blocked in the bridge, which obeys the interrupt.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::api::{Api, RegisterInto};
use super::client::duration_arg;
use super::context::RunContext;
use super::errors::{
    RhaiResultOf, ScriptErrorKind, invalid_argument, kind_and_message, script_error,
    script_error_with,
};
use super::runtime::Bridge;
use crate::lxd::ErrorKind;

/// How many calls run at once unless told otherwise.
pub const DEFAULT_PARALLELISM: usize = 8;

/// The outcome of one call.
type Outcome = Result<Dynamic, Box<EvalAltResult>>;

fn parallel(ctx: &NativeCallContext, items: Array, max: usize, f: &FnPtr) -> RhaiResultOf<Array> {
    if items.is_empty() {
        return Ok(Array::new());
    }
    #[allow(deprecated)] // "volatile", not deprecated: the documented way to do this
    let store = ctx.store_data();
    let engine: &Engine = ctx.engine();
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Outcome>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let workers = max.clamp(1, items.len());
    let mut not_started = None;
    let mut started_any = false;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let worker = std::thread::Builder::new()
                .name("parallel".into())
                .stack_size(super::SCRIPT_STACK_BYTES);
            let started = worker.spawn_scoped(scope, || {
                #[allow(deprecated)] // "volatile", not deprecated: the documented way to do this
                let ctx = store.create_context(engine);
                // Rhai refuses concurrent access to a captured variable ("data race"): each
                // worker calls its own copy of the closure, with its own copy of what it captured.
                let mut f = f.clone();
                let captured: Vec<Dynamic> = f.curry().iter().map(Dynamic::flatten_clone).collect();
                f.set_curry(captured);
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(n) else { break };
                    let outcome = f.call_within_context::<Dynamic>(&ctx, (item.clone(),));
                    let stop = outcome.as_ref().is_err_and(|e| !e.is_catchable());
                    if let Ok(mut slot) = results[n].lock() {
                        *slot = Some(outcome);
                    }
                    if stop {
                        // Ctrl-C or exit(): start nothing more.
                        next.store(items.len(), Ordering::Relaxed);
                    }
                }
            });
            // The workers that did start take every item between them.
            match started {
                Ok(_) => started_any = true,
                Err(e) => not_started = Some(e),
            }
        }
    });
    if let (false, Some(e)) = (started_any, not_started) {
        return Err(super::errors::invalid_argument(format!(
            "parallel: cannot start a worker thread: {e}"
        )));
    }

    let mut values = Array::with_capacity(items.len());
    let mut failures = Array::new();
    for (item, slot) in items.iter().zip(results) {
        match slot.into_inner().ok().flatten() {
            Some(Ok(value)) => values.push(value),
            // An uncatchable end (Ctrl-C, exit, limits) ends the whole script.
            Some(Err(e)) if !e.is_catchable() => return Err(e),
            Some(Err(e)) => {
                let mut failure = Map::new();
                failure.insert("item".into(), item.clone());
                failure.insert("error".into(), error_value(&e));
                failures.push(failure.into());
                values.push(Dynamic::UNIT);
            }
            None => values.push(Dynamic::UNIT), // not started: the script is stopping
        }
    }
    if failures.is_empty() {
        return Ok(values);
    }
    let count = failures.len();
    let shown: Vec<String> = failures
        .iter()
        .take(FAILURES_SHOWN)
        .filter_map(|f| f.read_lock::<Map>().map(|m| failure_line(ctx, &m)))
        .collect();
    let more = match count.saturating_sub(FAILURES_SHOWN) {
        0 => String::new(),
        n => format!("\n  ... and {n} more (in e.errors)"),
    };
    let mut details = Map::new();
    details.insert("results".into(), values.into());
    // The failures go in `errors`, beside `kind` and `message` (see `lxd-script api`).
    Err(script_error_with(
        ScriptErrorKind::Parallel,
        format!(
            "{count} of {} calls failed:\n  {}{more}",
            items.len(),
            shown.join("\n  ")
        ),
        details.into(),
        [("errors", failures.into())],
    ))
}

/// How many failures the message of a Parallel error lists (all are in its `errors`).
const FAILURES_SHOWN: usize = 10;

/// One failure of `parallel`, for its message: `item: Kind: message`, the item as the script
/// would print it.
fn failure_line(ctx: &NativeCallContext, failure: &Map) -> String {
    let item = failure.get("item").cloned().unwrap_or_default();
    let shown = ctx
        .call_native_fn::<rhai::ImmutableString>("to_string", (item.clone(),))
        .map_or_else(|_| item.to_string(), |s| s.to_string());
    let error = failure.get("error").cloned().unwrap_or_default();
    let said = kind_and_message(&error).unwrap_or_else(|| error.to_string());
    format!("{shown}: {said}")
}

/// What a failed call threw: our error maps as they are, anything else as its message.
fn error_value(e: &EvalAltResult) -> Dynamic {
    match e.unwrap_inner() {
        EvalAltResult::ErrorRuntime(value, _) => value.clone(),
        other => other.to_string().into(),
    }
}

fn wait_until(
    ctx: &NativeCallContext,
    bridge: &Bridge,
    timeout: Duration,
    interval: Duration,
    f: &FnPtr,
) -> RhaiResultOf<Dynamic> {
    let deadline = Instant::now() + timeout;
    loop {
        let value = f.call_within_context::<Dynamic>(ctx, ())?;
        if truthy(&value) {
            return Ok(value);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(script_error(
                ErrorKind::Timeout,
                format!(
                    "wait_until: the condition did not hold within {}s",
                    timeout.as_secs_f64()
                ),
                None,
                None,
                Dynamic::UNIT,
            ));
        }
        bridge.sleep(interval.min(left))?;
    }
}

/// Rhai's truthiness for conditions: false, (), 0, "" and empty arrays and maps are false.
fn truthy(v: &Dynamic) -> bool {
    if v.is_unit() {
        return false;
    }
    if let Ok(b) = v.as_bool() {
        return b;
    }
    if let Ok(i) = v.as_int() {
        return i != 0;
    }
    if v.is_string() {
        return !v.to_string().is_empty();
    }
    if let Some(a) = v.read_lock::<Array>() {
        return !a.is_empty();
    }
    if let Some(m) = v.read_lock::<Map>() {
        return !m.is_empty();
    }
    true
}

/// How often `wait_until` calls its function unless told otherwise.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);

/// Registers `parallel` and `wait_until`.
pub fn register(api: &mut Api, context: &std::sync::Arc<RunContext>) {
    rhai::FuncRegistration::new("parallel")
        .with_comments(["/// Calls f(item) for every item, 8 at a time; returns the results in input order, or throws Parallel listing each failure."])
        .register_into(api, |ctx: NativeCallContext, items: Array, f: FnPtr| {
            parallel(&ctx, items, DEFAULT_PARALLELISM, &f)
        });
    rhai::FuncRegistration::new("parallel")
        .with_comments([
            "/// Calls f(item) for every item, at most `max` at a time; results in input order.",
        ])
        .register_into(
            api,
            |ctx: NativeCallContext, items: Array, max: i64, f: FnPtr| {
                let max = usize::try_from(max)
                    .ok()
                    .filter(|m| *m > 0)
                    .ok_or_else(|| {
                        invalid_argument(format!("parallel: max must be at least 1, not {max}"))
                    })?;
                parallel(&ctx, items, max, &f)
            },
        );
    let bridge = context.bridge.clone();
    rhai::FuncRegistration::new("wait_until")
        .with_comments(["/// Calls f() every 0.5 s until it returns something truthy, and returns that; throws Timeout after `timeout` seconds."])
        .register_into(api, move |ctx: NativeCallContext, timeout: Dynamic, f: FnPtr| {
            let timeout = duration_arg("wait_until", &timeout)?;
            wait_until(&ctx, &bridge, timeout, DEFAULT_INTERVAL, &f)
        });
    let bridge = context.bridge.clone();
    rhai::FuncRegistration::new("wait_until")
        .with_comments(["/// Calls f() every `interval` seconds until it returns something truthy; throws Timeout after `timeout` seconds."])
        .register_into(api,
            move |ctx: NativeCallContext, timeout: Dynamic, interval: Dynamic, f: FnPtr| {
                let timeout = duration_arg("wait_until", &timeout)?;
                let interval = duration_arg("wait_until", &interval)?;
                wait_until(&ctx, &bridge, timeout, interval, &f)
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truthiness() {
        for falsy in [
            Dynamic::UNIT,
            false.into(),
            0_i64.into(),
            "".into(),
            Array::new().into(),
            Map::new().into(),
        ] {
            assert!(!truthy(&falsy), "{falsy:?}");
        }
        for yes in [
            true.into(),
            1_i64.into(),
            "x".into(),
            Dynamic::from_float(0.5),
        ] {
            assert!(truthy(&yes), "{yes:?}");
        }
    }
}
