//! The modules of `stdlib/`, compiled into the binary: `import "wait" as wait;` needs no file.
//! Each is compiled the first time a script imports it, so start-up pays for none of them.

use std::collections::HashMap;
use std::sync::Mutex;

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

/// Each stdlib module: its import name and source.
pub const MODULES: [(&str, &str); 3] = [
    ("wait", include_str!("../../stdlib/wait.rhai")),
    ("fleet", include_str!("../../stdlib/fleet.rhai")),
    ("snapshot", include_str!("../../stdlib/snapshot.rhai")),
];

/// Resolves the stdlib's import names, compiling each module once, on first import.
#[derive(Default)]
pub struct StdlibResolver {
    compiled: Mutex<HashMap<&'static str, Shared<Module>>>,
}

impl ModuleResolver for StdlibResolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let Some((name, source)) = MODULES.iter().find(|(name, _)| *name == path) else {
            return Err(EvalAltResult::ErrorModuleNotFound(path.to_owned(), pos).into());
        };
        let mut compiled = match self.compiled.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(module) = compiled.get(name) {
            return Ok(module.clone());
        }
        // Errors inside the module name its own file, not the importing script.
        let file = format!("stdlib/{name}.rhai");
        let mut ast = engine
            .compile(*source)
            .map_err(|e| EvalAltResult::ErrorInModule(file.clone(), e.into(), pos))?;
        ast.set_source(file.as_str());
        let module: Shared<Module> = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| EvalAltResult::ErrorInModule(file, e, pos))?
            .into();
        compiled.insert(name, module.clone());
        Ok(module)
    }
}
