//! The Rhai layer: one engine builder, one module per scripted type. It knows nothing of HTTP:
//! every LXD call goes through [`runtime::Bridge`] into [`crate::lxd`].
//!
//! - [`context`]: what the bindings of one engine share; [`runtime`]: the blocking bridge and
//!   the Ctrl-C interrupt; [`errors`], [`convert`], [`options`]: error maps, JSON ↔ Rhai values,
//!   strict options maps; [`pending`]: operations left running by `wait: false`; [`api`]: where
//!   the bindings register their functions.
//! - Scripted types: [`client`], [`instance`], [`snapshot`], [`images`], [`exec`], [`files`],
//!   the common shape of the other LXD [`object`]s and their [`managers`], [`operations`] with
//!   the raw API and events; globals: [`globals`].
//! - [`run`]: compiling and running scripts, and how their failures are reported.

pub(crate) mod api;
pub(crate) mod backups;
pub(crate) mod client;
pub(crate) mod concurrency;
pub(crate) mod context;
pub(crate) mod convert;
pub(crate) mod errors;
pub(crate) mod exec;
pub(crate) mod explain;
pub(crate) mod files;
pub(crate) mod globals;
pub(crate) mod held;
pub(crate) mod images;
pub(crate) mod instance;
pub(crate) mod managers;
pub(crate) mod object;
pub(crate) mod operations;
pub(crate) mod options;
pub(crate) mod pending;
pub(crate) mod progress;
pub(crate) mod reference;
pub(crate) mod run;
pub(crate) mod runtime;
pub(crate) mod site;
pub(crate) mod snapshot;
pub(crate) mod stdlib;
pub(crate) mod summary;

use std::sync::Arc;

use rhai::module_resolvers::{FileModuleResolver, ModuleResolversCollection};
use rhai::{Array, Dynamic, Engine, Scope, Token};

pub use api::Purpose;
pub use context::RunContext;

use api::{Api, RegisterInto};

/// Call depth allowed in every build (debug builds would otherwise allow only 8): deep enough
/// for recursive script functions, within [`SCRIPT_STACK_BYTES`].
pub const MAX_CALL_LEVELS: usize = 1024;

/// The stack script code may use (the main thread's, and each of `parallel`'s workers'):
/// enough for [`MAX_CALL_LEVELS`] nested calls. Only the pages used are committed.
pub const SCRIPT_STACK_BYTES: usize = 1 << 30;
/// Expression nesting allowed at the top level and inside functions, in every build.
const MAX_EXPR_DEPTHS: (usize, usize) = (128, 64);

/// Builds the engine of one session: limits, interrupt, printing, imports and every type.
/// `purpose` says whether functions keep the parameter metadata the REPL and `api` read.
pub fn build_engine(context: &Arc<RunContext>, purpose: Purpose) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTHS.0, MAX_EXPR_DEPTHS.1)
        .set_max_operations(context.max_operations);

    // pylxd's words that Rhai reserves (`sync`, `public`, `default`, `new`, ...) are plain
    // identifiers here, so `i.sync()` and `#{public: true}` parse. (Rhai marks this hook
    // "deprecated" only to say that it is volatile; it is the documented way to do this.)
    #[allow(deprecated)]
    engine.on_parse_token(|token, _, _| match token {
        Token::Reserved(word) if is_plain_word(&word) => Token::Identifier(word),
        other => other,
    });

    let interrupt = context.bridge.interrupt().clone();
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

    let mut api = Api::new(&mut engine, purpose);
    globals::register(&mut api, context);
    concurrency::register(&mut api, context);
    client::register(&mut api, context);
    instance::register(&mut api);
    snapshot::register(&mut api);
    site::register(&mut api);
    backups::register(&mut api);
    exec::register(&mut api);
    files::register(&mut api);
    managers::register_all(&mut api);
    images::register(&mut api);
    operations::register(&mut api);
    api.finish();

    // Imports: the stdlib modules compiled into the binary, then the script's own files.
    let mut resolvers = ModuleResolversCollection::new();
    resolvers.push(stdlib::StdlibResolver::default());
    let mut files = FileModuleResolver::new();
    if let Some(dir) = &context.script_dir {
        files.set_base_path(dir);
    }
    resolvers.push(files);
    engine.set_module_resolver(resolvers);
    engine
}

/// Registers `to_string` and `to_debug` (used by `print`, `${}` and the REPL) for a type.
pub(crate) fn register_display<T: rhai::Variant + Clone>(
    api: &mut Api,
    describe: fn(&T) -> String,
) {
    for name in ["to_string", "to_debug"] {
        rhai::FuncRegistration::new(name)
            .with_comments(["/// The object in one line: what it is, its name and its state."])
            .register_into(api, move |value: &mut T| describe(value));
    }
}

/// True for a reserved word that is a plain identifier (not a symbol like `:=`).
fn is_plain_word(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A fresh scope with the session's constants (`ARGS`).
pub fn new_scope(context: &RunContext) -> Scope<'static> {
    let mut scope = Scope::new();
    let args: Array = context.args.iter().cloned().map(Dynamic::from).collect();
    scope.push_constant("ARGS", args);
    scope
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::client::ConnectDefaults;
    use crate::script::runtime::{Bridge, Interrupt};

    fn context(runtime: &tokio::runtime::Runtime) -> Arc<RunContext> {
        Arc::new(RunContext {
            bridge: Bridge::new(runtime.handle().clone(), Interrupt::default()),
            defaults: ConnectDefaults::default(),
            args: vec!["a".into()],
            script_dir: None,
            max_operations: 0,
            progress: false,
        })
    }

    /// Every function we register carries a doc comment (they feed `lxd-script api` and the REPL).
    #[test]
    fn every_registered_function_is_documented() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let engine = build_engine(&context(&runtime), Purpose::Exploring);
        let json = engine.gen_fn_metadata_to_json(false).expect("metadata");
        let meta: serde_json::Value = serde_json::from_str(&json).expect("json");
        let functions = meta["functions"].as_array().expect("functions");
        assert!(functions.len() > 100, "only {} functions?", functions.len());
        let undocumented: Vec<String> = functions
            .iter()
            .filter(|f| f["docComments"].as_array().is_none_or(|d| d.is_empty()))
            .map(|f| f["signature"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(undocumented.is_empty(), "undocumented: {undocumented:#?}");
    }

    /// An engine built for scripts has the same functions as one built for the REPL, only
    /// without their parameter names and types.
    #[test]
    fn scripts_and_exploring_engines_have_the_same_functions() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let functions = |purpose| {
            let engine = build_engine(&context(&runtime), purpose);
            let json = engine.gen_fn_metadata_to_json(true).expect("metadata");
            let meta: serde_json::Value = serde_json::from_str(&json).expect("json");
            let mut found: Vec<(String, u64, bool)> = meta["functions"]
                .as_array()
                .expect("functions")
                .iter()
                .map(|f| {
                    let name = f["name"].as_str().unwrap_or_default().to_owned();
                    let arity = f["numParams"].as_u64().unwrap_or_default();
                    (name, arity, f["returnType"].is_string())
                })
                .collect();
            found.sort();
            found
        };
        let scripts = functions(Purpose::Scripts);
        let exploring = functions(Purpose::Exploring);
        let names = |all: &[(String, u64, bool)]| -> Vec<(String, u64)> {
            all.iter().map(|(n, a, _)| (n.clone(), *a)).collect()
        };
        assert!(scripts.len() > 500, "only {} functions?", scripts.len());
        assert_eq!(names(&scripts), names(&exploring));
        let described = |all: &[(String, u64, bool)], name: &str| {
            all.iter().any(|(n, _, typed)| n == name && *typed)
        };
        assert!(described(&exploring, "to_map") && !described(&scripts, "to_map"));
    }

    /// Every stdlib module compiles with the real engine and exports its functions.
    #[test]
    fn every_stdlib_module_compiles() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let engine = build_engine(&context(&runtime), Purpose::Scripts);
        for (name, source) in stdlib::MODULES {
            let ast = engine
                .compile(source)
                .unwrap_or_else(|e| panic!("stdlib/{name}.rhai: {e}"));
            assert!(ast.iter_functions().count() >= 3, "{name}");
        }
        let imported: rhai::INT = engine
            .eval(r#"import "wait" as w; import "fleet" as f; import "snapshot" as s; 3"#)
            .expect("imports resolve");
        assert_eq!(imported, 3);
    }

    /// Rhai's reserved words that pylxd uses parse as identifiers.
    #[test]
    fn pylxd_words_parse() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let engine = build_engine(&context(&runtime), Purpose::Scripts);
        let map: rhai::Map = engine
            .eval("#{public: true, default: 1, new: 2, shared: 3, static: 4, sync: 5}")
            .expect("reserved words as keys");
        assert_eq!(map.len(), 6);
        assert!(engine.compile("fn f(i) { i.sync(); i.public }").is_ok());
        assert_eq!(
            engine.eval::<rhai::INT>("ARGS.len()").ok(),
            None,
            "ARGS is in the scope, not the engine"
        );
        let scope = new_scope(&context(&runtime));
        assert_eq!(scope.get_value::<Array>("ARGS").map(|a| a.len()), Some(1));
    }
}
