//! Compiling and running scripts, and reporting how they ended as an exit status.

use rhai::{AST, Dynamic, Engine, EvalAltResult, ParseError, Position, Scope};

use super::errors::{ExitRequest, INTERRUPTED, kind_and_message};
use super::explain::{self, Hints};
use crate::lxd;
use crate::lxd::client::AbandonedOutcome;

/// How a script ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It ran to the end.
    Finished,
    /// It called `exit(code)`.
    Exit(i32),
    /// An uncaught error; the message says where and what.
    Failed(String),
    /// Ctrl-C stopped it.
    Interrupted,
    /// It does not compile.
    Invalid(String),
}

impl Outcome {
    /// Says on stderr how a run of `name` ended, when it did not end well, and returns the exit
    /// status.
    pub fn report(&self, name: &str) -> i32 {
        match self {
            Outcome::Failed(message) | Outcome::Invalid(message) => eprintln!("{message}"),
            Outcome::Interrupted => eprintln!("{name}: interrupted"),
            Outcome::Finished | Outcome::Exit(_) => {}
        }
        self.exit_code()
    }

    /// The process exit status: 0, `exit(n)`, 1 for an error, 2 for a compile error, 130 for Ctrl-C.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Finished => 0,
            Outcome::Exit(code) => *code,
            Outcome::Failed(_) => 1,
            Outcome::Invalid(_) => 2,
            Outcome::Interrupted => 130,
        }
    }
}

/// Replaces a leading `#!` line by an empty one, keeping line numbers.
pub fn strip_shebang(source: &str) -> &str {
    if source.starts_with("#!") {
        match source.find('\n') {
            Some(i) => &source[i..],
            None => "",
        }
    } else {
        source
    }
}

/// Compiles a script; the error reads `name:line:column: message`.
pub fn compile(engine: &Engine, scope: &Scope, name: &str, source: &str) -> Result<AST, String> {
    let source = strip_shebang(source);
    engine
        .compile_with_scope(scope, source)
        .map_err(|e| describe_parse_error(name, source, &e))
}

/// `name:line:column: message` for a compile error, with advice for a pylxd habit.
pub fn describe_parse_error(name: &str, source: &str, err: &ParseError) -> String {
    let mut message = err.err_type().to_string();
    if let Some(hint) = explain::parse_hint(source, err.err_type(), err.position()) {
        message = format!("{message}. {hint}");
    }
    located(name, err.position(), &message)
}

/// Runs a compiled script in `scope`; its value is that of its last expression.
pub fn run(
    engine: &Engine,
    scope: &mut Scope,
    ast: &AST,
    name: &str,
    hints: &Hints,
) -> Result<Dynamic, Outcome> {
    engine
        .eval_ast_with_scope::<Dynamic>(scope, ast)
        .map_err(|err| outcome_of(&err, name, hints))
}

/// Classifies a failed evaluation.
pub fn outcome_of(err: &EvalAltResult, name: &str, hints: &Hints) -> Outcome {
    match err.unwrap_inner() {
        EvalAltResult::ErrorTerminated(value, _) => match value.clone().try_cast::<ExitRequest>() {
            Some(ExitRequest(code)) => Outcome::Exit(code),
            None if value.to_string() == INTERRUPTED => Outcome::Interrupted,
            None => Outcome::Failed(describe_error(err, name, hints)),
        },
        _ => Outcome::Failed(describe_error(err, name, hints)),
    }
}

/// `name:line:column: message` for an uncaught error, where the script called into a function
/// or module that failed: `main.rhai:2:1 -> mymod.rhai:3:14: message`, one position per call,
/// each in its own file.
pub fn describe_error(err: &EvalAltResult, name: &str, hints: &Hints) -> String {
    let mut chain = Vec::new();
    let mut file = name.to_owned();
    let mut current = err;
    loop {
        match current {
            EvalAltResult::ErrorInFunctionCall(_, source, inner, position) => {
                chain.push(located_at(&file, *position));
                if !source.is_empty() {
                    file = module_file(source);
                }
                current = inner;
            }
            EvalAltResult::ErrorInModule(path, inner, position) => {
                chain.push(located_at(&file, *position));
                file = module_file(path);
                current = inner;
            }
            _ => break,
        }
    }
    let position = if current.position().is_none() {
        err.position()
    } else {
        current.position()
    };
    chain.push(located_at(&file, position));
    chain.dedup();
    format!("{}: {}", chain.join(" -> "), error_message(current, hints))
}

/// An error's own message (without its position), in the script's terms.
fn error_message(err: &EvalAltResult, hints: &Hints) -> String {
    match err {
        EvalAltResult::ErrorRuntime(value, _) => {
            kind_and_message(value).unwrap_or_else(|| format!("uncaught exception: {value}"))
        }
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "Stack overflow: more than {} nested function calls (is a recursion missing its end?)",
            super::MAX_CALL_LEVELS
        ),
        EvalAltResult::ErrorFunctionNotFound(signature, _) => hints.function_not_found(signature),
        EvalAltResult::ErrorDotExpr(message, _) => hints
            .unknown_property(message)
            .unwrap_or_else(|| message.clone()),
        EvalAltResult::ErrorVariableNotFound(variable, _) => {
            match explain::foreign_constant(variable) {
                Some(instead) => {
                    format!("Variable not found: {variable} (in Rhai, write `{instead}`)")
                }
                None => format!("Variable not found: {variable}"),
            }
        }
        other => {
            // Rhai appends " (line L, position C)"; the location is printed in front instead.
            let text = other.to_string();
            let suffix = format!(" ({})", other.position());
            text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
        }
    }
}

/// The file a module's source names: the stdlib's and imported files' own names.
fn module_file(source: &str) -> String {
    if source.ends_with(".rhai") {
        source.to_owned()
    } else {
        format!("{source}.rhai")
    }
}

/// `name:line:column`, `name:line` or `name`.
fn located_at(name: &str, position: Position) -> String {
    match (position.line(), position.position()) {
        (Some(line), Some(column)) => format!("{name}:{line}:{column}"),
        (Some(line), None) => format!("{name}:{line}"),
        _ => name.to_owned(),
    }
}

fn located(name: &str, position: Position, message: &str) -> String {
    format!("{}: {message}", located_at(name, position))
}

/// Cancels the server operations whose waits Ctrl-C stopped, where LXD allows, and says on
/// stderr what became of each: cancelled, or going on (with its id, to follow it).
pub async fn say_abandoned_operations() {
    for op in lxd::client::settle_abandoned_waits().await {
        let what = match op.description.as_str() {
            "" => op.id.clone(),
            description => format!("{} ({description})", op.id),
        };
        match op.outcome {
            AbandonedOutcome::Cancelled => {
                eprintln!("lxd-script: cancelled operation {what} in {}", op.place)
            }
            AbandonedOutcome::GoesOn => eprintln!(
                "lxd-script: operation {what} cannot be cancelled and goes on in {}",
                op.place
            ),
            AbandonedOutcome::Ended => {}
        }
    }
}

/// Waits for the operations the script started without waiting and never joined, and says
/// on stderr which of them failed; true when any did. A script's end does not hide a failure
/// it never waited for (`i.rename("x")` on a running instance fails after the call returned).
pub async fn say_unjoined_failures() -> bool {
    let failures = super::pending::join_unjoined().await;
    for failure in &failures {
        let what = match failure.description.as_str() {
            "" => failure.id.clone(),
            description => format!("{} ({description})", failure.id),
        };
        eprintln!(
            "lxd-script: operation {what} in {}, started without waiting, failed: {}: {}",
            failure.place,
            failure.error.kind(),
            failure.error
        );
    }
    !failures.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_are_blanked_keeping_lines() {
        assert_eq!(
            strip_shebang("#!/usr/bin/env lxd-script\nlet x = 1;"),
            "\nlet x = 1;"
        );
        assert_eq!(strip_shebang("let x = 1;"), "let x = 1;");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Outcome::Finished.exit_code(), 0);
        assert_eq!(Outcome::Exit(3).exit_code(), 3);
        assert_eq!(Outcome::Failed(String::new()).exit_code(), 1);
        assert_eq!(Outcome::Invalid(String::new()).exit_code(), 2);
        assert_eq!(Outcome::Interrupted.exit_code(), 130);
    }

    #[test]
    fn compile_errors_carry_file_line_and_column() {
        let engine = Engine::new();
        let err =
            compile(&engine, &Scope::new(), "x.rhai", "let a = 1;\nlet = 2;").expect_err("bad");
        assert!(err.starts_with("x.rhai:2:"), "{err}");
    }

    #[test]
    fn thrown_error_maps_show_kind_and_message() {
        let engine = Engine::new();
        let err = engine
            .run(
                r#"let x = 1;
throw #{kind: "NotFound", message: "Instance not found"};"#,
            )
            .expect_err("thrown");
        let index = Engine::new();
        assert_eq!(
            describe_error(&err, "t.rhai", &Hints::of_engine(&index)),
            "t.rhai:2:1: NotFound: Instance not found"
        );
    }
}
