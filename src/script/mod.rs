//! The Rhai layer: one engine builder, one module per scripted type. It knows nothing of HTTP:
//! every LXD call goes through [`runtime::Bridge`] into [`crate::lxd`].
//!
//! - [`session`]: what the bindings of one engine share; [`runtime`]: the blocking bridge and
//!   the Ctrl-C interrupt; [`errors`], [`convert`], [`options`]: error maps, JSON ↔ Rhai values,
//!   strict options maps; [`pending`]: operations left running by `wait: false`.
//! - Scripted types: [`client`], [`instance`], [`snapshot`], [`image`]; globals: [`globals`].
//! - [`run`]: compiling and running scripts, and how their failures are reported.

pub mod client;
pub mod convert;
pub mod errors;
pub mod globals;
pub mod image;
pub mod instance;
pub mod options;
pub mod pending;
pub mod run;
pub mod runtime;
pub mod session;
pub mod snapshot;

use std::sync::Arc;

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Array, Dynamic, Engine, Scope, Token};

pub use session::Session;

/// Call depth allowed in every build (debug builds would otherwise allow only 8).
const MAX_CALL_LEVELS: usize = 64;
/// Expression nesting allowed at the top level and inside functions, in every build.
const MAX_EXPR_DEPTHS: (usize, usize) = (128, 64);

/// Builds the engine of one session: limits, interrupt, printing, imports and every type.
pub fn build_engine(session: &Arc<Session>) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTHS.0, MAX_EXPR_DEPTHS.1)
        .set_max_operations(session.max_operations);

    // pylxd's words that Rhai reserves (`sync`, `public`, `default`, `new`, ...) are plain
    // identifiers here, so `i.sync()` and `#{public: true}` parse. (Rhai marks this hook
    // "deprecated" only to say that it is volatile; it is the documented way to do this.)
    #[allow(deprecated)]
    engine.on_parse_token(|token, _, _| match token {
        Token::Reserved(word) if is_plain_word(&word) => Token::Identifier(word),
        other => other,
    });

    let interrupt = session.bridge.interrupt().clone();
    engine.on_progress(move |_| {
        interrupt
            .is_triggered()
            .then(|| Dynamic::from(errors::INTERRUPTED))
    });
    engine.on_print(|text| println!("{text}"));
    engine.on_debug(|text, source, pos| match (source, pos.line()) {
        (Some(src), Some(line)) => eprintln!("{src}:{line}: {text}"),
        (None, Some(line)) => eprintln!("{line}: {text}"),
        _ => eprintln!("{text}"),
    });

    let mut resolver = FileModuleResolver::new();
    if let Some(dir) = &session.script_dir {
        resolver.set_base_path(dir);
    }
    engine.set_module_resolver(resolver);

    globals::register(&mut engine, session);
    client::register(&mut engine, session);
    instance::register(&mut engine);
    snapshot::register(&mut engine);
    image::register(&mut engine);
    engine
}

/// True for a reserved word that is a plain identifier (not a symbol like `:=`).
fn is_plain_word(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A fresh scope with the session's constants (`ARGS`).
pub fn new_scope(session: &Session) -> Scope<'static> {
    let mut scope = Scope::new();
    let args: Array = session.args.iter().cloned().map(Dynamic::from).collect();
    scope.push_constant("ARGS", args);
    scope
}
