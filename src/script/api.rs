//! Where the bindings register their functions, with or without the metadata that only the
//! REPL and `lxd-script api` read.
//!
//! With Rhai's `metadata` feature, registering a function into an engine formats and parses
//! the name of every parameter type. A script never reads it, so an engine built to run
//! scripts registers the same functions into a module of its own, without it: that cut the
//! instructions of `lxd-script eval 1` by nearly a third.

use rhai::{Engine, FuncRegistration, Module, RhaiNativeFunc, Variant};

/// What an engine is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Running or checking scripts: functions carry their doc comments but not their
    /// parameter names and types.
    Scripts,
    /// The REPL and `lxd-script api`: every function with its full signature.
    Exploring,
}

/// The engine being built, and where its functions go.
pub struct Api<'e> {
    engine: &'e mut Engine,
    /// The functions of a [`Purpose::Scripts`] engine, added to it by [`Api::finish`];
    /// `None` registers straight into the engine, with full metadata.
    functions: Option<Module>,
}

impl<'e> Api<'e> {
    /// Starts registering into `engine`.
    pub fn new(engine: &'e mut Engine, purpose: Purpose) -> Api<'e> {
        let functions = (purpose == Purpose::Scripts).then(Module::new);
        Api { engine, functions }
    }

    /// Gives a Rust type its name in scripts and error messages.
    pub fn register_type_with_name<T: Variant + Clone>(&mut self, name: &str) {
        self.engine.register_type_with_name::<T>(name);
    }

    /// Adds the registered functions to the engine.
    pub fn finish(self) {
        if let Some(functions) = self.functions {
            self.engine.register_global_module(functions.into());
        }
    }
}

/// Registers a described function into an [`Api`].
pub trait RegisterInto {
    /// Registers `func` under this registration's name, comments and flags.
    fn register_into<A, const N: usize, const X: bool, R, const F: bool, FUNC>(
        self,
        api: &mut Api,
        func: FUNC,
    ) where
        A: 'static,
        R: Variant + Clone,
        FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static;
}

impl RegisterInto for FuncRegistration {
    fn register_into<A, const N: usize, const X: bool, R, const F: bool, FUNC>(
        self,
        api: &mut Api,
        func: FUNC,
    ) where
        A: 'static,
        R: Variant + Clone,
        FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    {
        match &mut api.functions {
            Some(module) => {
                self.in_global_namespace().set_into_module(module, func);
            }
            None => {
                self.register_into_engine(api.engine, func);
            }
        }
    }
}
