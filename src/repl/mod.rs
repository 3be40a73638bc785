//! The REPL. For now a plain line loop: variables and functions persist from line to line,
//! errors print without leaving, Ctrl-C clears the line, Ctrl-D exits.

use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, Scope};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::script::run::{self, Outcome};
use crate::script::{Session, build_engine, new_scope};

/// Runs the REPL until Ctrl-D; returns the exit status.
pub fn run(session: &Arc<Session>) -> i32 {
    let engine = build_engine(session);
    let mut scope = new_scope(session);
    let mut editor = match DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("lxd-script: cannot start the line editor: {e}");
            return 1;
        }
    };
    let mut functions = AST::empty();
    loop {
        let line = match editor.readline("lxd> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return 0,
            Err(e) => {
                eprintln!("lxd-script: {e}");
                return 1;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        session.bridge.interrupt().reset();
        match evaluate(&engine, &mut scope, &mut functions, &line) {
            Ok(value) if value.is_unit() => {}
            Ok(value) => println!("{}", display(&engine, value)),
            Err(Outcome::Exit(code)) => return code,
            Err(Outcome::Failed(m) | Outcome::Invalid(m)) => eprintln!("{m}"),
            Err(Outcome::Interrupted) => eprintln!("interrupted"),
            Err(Outcome::Finished) => {}
        }
    }
}

/// Evaluates one entry; its functions join those of earlier entries.
fn evaluate(
    engine: &Engine,
    scope: &mut Scope<'static>,
    functions: &mut AST,
    line: &str,
) -> Result<Dynamic, Outcome> {
    let ast = engine
        .compile_with_scope(scope, line)
        .map_err(|e| Outcome::Invalid(run::describe_parse_error("<repl>", &e)))?;
    let mut merged = functions.merge(&ast);
    let result = engine
        .eval_ast_with_scope::<Dynamic>(scope, &merged)
        .map_err(|e| run::outcome_of(&e, "<repl>"));
    merged.clear_statements();
    *functions = merged;
    result
}

/// Renders a value with the engine's own `to_debug`, so scripted types print as themselves.
fn display(engine: &Engine, value: Dynamic) -> String {
    engine
        .call_fn::<String>(
            &mut Scope::new(),
            &AST::empty(),
            "to_debug",
            (value.clone(),),
        )
        .unwrap_or_else(|_| value.to_string())
}
