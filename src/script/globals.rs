//! The global functions: `env`, `sleep`, local files and JSON
//! (`ARGS` is a constant in the scope; `exit` is Rhai's own).

use std::sync::Arc;

use rhai::{Blob, Dynamic};

use super::api::{Api, RegisterInto};
use super::context::RunContext;
use super::convert::{dynamic_to_json, json_to_dynamic};
use super::errors::{ExitRequest, RhaiResultOf, invalid_argument, script_error};
use super::options::{describe_value, duration};
use super::runtime::Bridge;
use crate::lxd::ErrorKind;

/// A local file `call` could not read or write: a `Local` error naming the call and the path.
fn io_error(call: &str, path: &str, err: std::io::Error) -> Box<rhai::EvalAltResult> {
    script_error(
        ErrorKind::Local,
        format!("{call}: {path}: {err}"),
        None,
        None,
        Dynamic::UNIT,
    )
}

/// Ends the script with an exit status (not catchable, like Ctrl-C).
fn exit_with(code: i32) -> RhaiResultOf<()> {
    Err(rhai::EvalAltResult::ErrorTerminated(
        Dynamic::from(ExitRequest(code)),
        rhai::Position::NONE,
    )
    .into())
}

fn interruptible_sleep(bridge: &Bridge, secs: Dynamic) -> RhaiResultOf<()> {
    let pause = duration(&secs).map_err(|expected| {
        invalid_argument(format!(
            "sleep: expected {expected}, not {}",
            describe_value(&secs)
        ))
    })?;
    bridge.sleep(pause)
}

/// The current UTC time as a sortable name part: `20261127-134501-123456789`.
pub fn utc_stamp(now: std::time::SystemTime) -> String {
    let since = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}-{:09}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_nanos()
    )
}

/// Registers the global functions.
pub fn register(api: &mut Api, context: &Arc<RunContext>) {
    // Rhai's own `exit` makes its value the script's result, which cannot carry a status.
    rhai::FuncRegistration::new("exit")
        .with_comments(["/// Ends the script with status 0."])
        .register_into(api, || exit_with(0));
    rhai::FuncRegistration::new("exit")
        .with_comments(["/// Ends the script with this status (0-255)."])
        .register_into(api, |code: i64| {
            exit_with(i32::try_from(code.clamp(0, 255)).unwrap_or(255))
        });

    rhai::FuncRegistration::new("env")
        .with_comments(["/// The environment variable, or () when unset."])
        .register_into(api, |name: &str| {
            std::env::var(name).map_or(Dynamic::UNIT, Dynamic::from)
        });
    rhai::FuncRegistration::new("env")
        .with_comments(["/// The environment variable, or `default` when unset."])
        .register_into(api, |name: &str, default: Dynamic| {
            std::env::var(name).map_or(default, Dynamic::from)
        });

    // Rhai's own sleep(INT)/sleep(FLOAT) cannot be interrupted; these replace them.
    let bridge = context.bridge.clone();
    rhai::FuncRegistration::new("sleep")
        .with_comments(["/// Sleeps for a number of seconds; Ctrl-C interrupts it."])
        .register_into(api, move |secs: rhai::INT| {
            interruptible_sleep(&bridge, Dynamic::from_int(secs))
        });
    let bridge = context.bridge.clone();
    rhai::FuncRegistration::new("sleep")
        .with_comments(["/// Sleeps for a fractional number of seconds; Ctrl-C interrupts it."])
        .register_into(api, move |secs: rhai::FLOAT| {
            interruptible_sleep(&bridge, Dynamic::from_float(secs))
        });

    rhai::FuncRegistration::new("read_file")
        .with_comments(["/// A local file's text (UTF-8)."])
        .register_into(api, |path: &str| -> RhaiResultOf<String> {
            std::fs::read_to_string(path).map_err(|e| io_error("read_file", path, e))
        });
    rhai::FuncRegistration::new("read_blob")
        .with_comments(["/// A local file's bytes."])
        .register_into(api, |path: &str| -> RhaiResultOf<Blob> {
            std::fs::read(path).map_err(|e| io_error("read_blob", path, e))
        });
    rhai::FuncRegistration::new("write_file")
        .with_comments(["/// Writes text or a blob to a local file, replacing it."])
        .register_into(api, |path: &str, data: Dynamic| -> RhaiResultOf<()> {
            let bytes = if data.is_blob() {
                data.cast::<Blob>()
            } else if data.is_string() {
                data.to_string().into_bytes()
            } else {
                return Err(invalid_argument(format!(
                    "write_file: data must be a string or a blob, not {}",
                    data.type_name()
                )));
            };
            std::fs::write(path, bytes).map_err(|e| io_error("write_file", path, e))
        });

    rhai::FuncRegistration::new("utc_stamp")
        .with_comments([
            "/// The current UTC time as a sortable name part, like 20261127-134501-123456789.",
        ])
        .register_into(api, || utc_stamp(std::time::SystemTime::now()));
    rhai::FuncRegistration::new("to_json")
        .with_comments(["/// The value as JSON text (nesting at most 127 arrays or maps deep, as parse_json accepts)."])
        .register_into(api, |value: Dynamic| -> RhaiResultOf<String> {
            let json =
                dynamic_to_json(&value).map_err(|e| invalid_argument(format!("to_json: {e}")))?;
            Ok(json.to_string())
        });
    rhai::FuncRegistration::new("parse_json")
        .with_comments([
            "/// Parses JSON text (objects become maps, null becomes ()); at most 127 levels deep.",
        ])
        .register_into(api, |text: &str| -> RhaiResultOf<Dynamic> {
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| invalid_argument(format!("parse_json: {e}")))?;
            Ok(json_to_dynamic(&value))
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_stamps_are_civil_dates() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101-000000-000000000");
        let t = UNIX_EPOCH + Duration::new(1_709_210_096, 42);
        assert_eq!(utc_stamp(t), "20240229-123456-000000042");
    }
}
