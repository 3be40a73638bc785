//! The modules of `stdlib/`, compiled into the binary: `import "wait" as wait;` needs no file.

use rhai::module_resolvers::StaticModuleResolver;
use rhai::{Engine, Module, Scope};

/// Each stdlib module: its import name and source.
pub const MODULES: [(&str, &str); 3] = [
    ("wait", include_str!("../../stdlib/wait.rhai")),
    ("fleet", include_str!("../../stdlib/fleet.rhai")),
    ("snapshot", include_str!("../../stdlib/snapshot.rhai")),
];

/// A resolver holding every stdlib module, compiled with `engine` (which has every type and
/// global the modules use).
pub fn resolver(engine: &Engine) -> StaticModuleResolver {
    let mut resolver = StaticModuleResolver::new();
    for (name, source) in MODULES {
        // The modules are tested in CI: a broken one is a build defect, reported at import time.
        if let Ok(module) = engine
            .compile(source)
            .map_err(|e| e.to_string())
            .and_then(|ast| {
                Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(|e| e.to_string())
            })
        {
            resolver.insert(name, module);
        }
    }
    resolver
}
