//! Errors as scripts see them: maps `#{kind, message, status_code, operation, details}`,
//! thrown with `ErrorRuntime` so that `try { } catch (e) { }` receives the map itself.

use rhai::{Dynamic, EvalAltResult, Map, Position};

use crate::lxd::{self, ErrorKind};

/// The result type of every binding (the name makes Rhai's metadata show the plain type).
pub type RhaiResultOf<T> = Result<T, Box<EvalAltResult>>;

/// The value an interrupted script terminates with (not catchable by the script).
pub const INTERRUPTED: &str = "interrupted";

/// The `kind` of an error a script catches: the client's, or one only scripts meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptErrorKind {
    /// An error of the LXD client, or a wrong argument.
    Client(ErrorKind),
    /// A read-only attribute was assigned.
    ReadOnly,
    /// One or more calls of a script's `parallel` failed.
    Parallel,
    /// Some changes of an `apply` failed (`e.done`, `e.failed`, `e.skipped` say which).
    Apply,
}

impl ScriptErrorKind {
    /// The name scripts see.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptErrorKind::Client(kind) => kind.as_str(),
            ScriptErrorKind::ReadOnly => "ReadOnly",
            ScriptErrorKind::Parallel => "Parallel",
            ScriptErrorKind::Apply => "Apply",
        }
    }
}

impl From<ErrorKind> for ScriptErrorKind {
    fn from(kind: ErrorKind) -> Self {
        ScriptErrorKind::Client(kind)
    }
}

/// Builds the error map thrown to scripts.
pub fn script_error(
    kind: impl Into<ScriptErrorKind>,
    message: impl Into<String>,
    status_code: Option<u16>,
    operation: Option<&str>,
    details: Dynamic,
) -> Box<EvalAltResult> {
    let mut map = Map::new();
    map.insert("kind".into(), kind.into().as_str().into());
    map.insert("message".into(), message.into().into());
    map.insert(
        "status_code".into(),
        status_code.map_or(Dynamic::UNIT, |c| Dynamic::from_int(i64::from(c))),
    );
    map.insert(
        "operation".into(),
        operation.map_or(Dynamic::UNIT, |o| o.into()),
    );
    map.insert("details".into(), details);
    EvalAltResult::ErrorRuntime(map.into(), Position::NONE).into()
}

/// A script error with fields of its own beside `kind` and `message`: `Parallel`'s `errors`,
/// `Apply`'s `done`, `failed` and `skipped`.
pub fn script_error_with(
    kind: ScriptErrorKind,
    message: impl Into<String>,
    details: Dynamic,
    fields: impl IntoIterator<Item = (&'static str, Dynamic)>,
) -> Box<EvalAltResult> {
    match *script_error(kind, message, None, None, details) {
        EvalAltResult::ErrorRuntime(value, pos) => {
            let mut map = value.cast::<Map>();
            for (name, value) in fields {
                map.insert(name.into(), value);
            }
            EvalAltResult::ErrorRuntime(map.into(), pos).into()
        }
        other => other.into(),
    }
}

/// `Kind: message` of a thrown error map (one with a `kind`), `None` for any other value.
pub fn kind_and_message(thrown: &Dynamic) -> Option<String> {
    let map = thrown.read_lock::<Map>()?;
    if !map.contains_key("kind") {
        return None;
    }
    let field = |k: &str| map.get(k).map(|v| v.to_string()).unwrap_or_default();
    Some(format!("{}: {}", field("kind"), field("message")))
}

/// Converts a client error; a cancellation becomes an uncatchable termination.
pub fn lxd_error(err: lxd::Error) -> Box<EvalAltResult> {
    if let lxd::Error::Cancelled = err {
        return interrupted();
    }
    let details = match &err {
        lxd::Error::OperationFailed { metadata, .. } => super::convert::json_to_dynamic(metadata),
        _ => Dynamic::UNIT,
    };
    script_error(
        err.kind(),
        err.to_string(),
        err.status_code(),
        err.operation(),
        details,
    )
}

/// `InvalidArgument`: a wrong type or value passed to a call.
pub fn invalid_argument(message: impl Into<String>) -> Box<EvalAltResult> {
    script_error(
        ErrorKind::InvalidArgument,
        message,
        None,
        None,
        Dynamic::UNIT,
    )
}

/// `ReadOnly`: assigning a read-only attribute.
fn read_only(type_name: &str, attribute: &str, hint: &str) -> Box<EvalAltResult> {
    script_error(
        ScriptErrorKind::ReadOnly,
        format!("{type_name}.{attribute} is read-only{hint}"),
        None,
        None,
        Dynamic::UNIT,
    )
}

/// The setter of a read-only attribute: Rhai writes a property back after a method call on it
/// (`img.aliases.map(...)`), so an unchanged value is accepted; a changed one is `ReadOnly`.
pub fn reject_change(
    type_name: &str,
    attribute: &str,
    hint: &str,
    current: &Dynamic,
    assigned: &Dynamic,
) -> RhaiResultOf<()> {
    let same = match (
        super::convert::dynamic_to_json(current),
        super::convert::dynamic_to_json(assigned),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(read_only(type_name, attribute, hint))
    }
}

/// What `exit(code)` terminates the script with: uncatchable, carried to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitRequest(pub i32);

/// The uncatchable termination of an interrupted script (Ctrl-C).
pub fn interrupted() -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(INTERRUPTED.into(), Position::NONE).into()
}
