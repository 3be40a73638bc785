//! The API reference, generated from the engine's own metadata: every type, property, method
//! signature and doc comment, so it can never drift from what scripts can call.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rhai::Engine;
use serde_json::Value;

/// A property: its type, whether scripts may assign it, its doc.
#[derive(Debug, Default)]
pub struct Property {
    /// The script type it holds (`Instances`, `string`, `any`...).
    pub ty: String,
    /// True when scripts may assign it.
    pub writable: bool,
    /// Its doc comment, as one line.
    pub doc: String,
}

/// What one type (or the globals) offers.
#[derive(Debug, Default)]
pub struct TypeApi {
    /// Properties by name.
    pub properties: BTreeMap<String, Property>,
    /// Methods (or global functions), sorted by name, then by signature.
    pub methods: Vec<Method>,
}

/// One registered function, cleaned up for people.
#[derive(Debug)]
pub struct Method {
    /// Its name (`[index]` for the indexer).
    pub name: String,
    /// Its parameters after the receiver, as `name: type` or `type`.
    pub params: Vec<String>,
    /// The script type it returns.
    pub returns: String,
    /// Its doc comment, as one line.
    pub doc: String,
}

impl Method {
    /// `name(params) -> returns`.
    pub fn signature(&self) -> String {
        format!(
            "{}({}) -> {}",
            self.name,
            self.params.join(", "),
            self.returns
        )
    }
}

/// Every type's properties and methods, read from the engine's metadata: the source of
/// `lxd-script api`, the REPL's completion, hints and `:help`.
#[derive(Debug, Default)]
pub struct ApiIndex {
    /// By script type name; `""` holds the global functions.
    pub types: BTreeMap<String, TypeApi>,
}

/// A Rust type name as scripts know it (the engine knows the names of our types).
pub fn script_type(engine: &Engine, raw: &str) -> String {
    let raw = raw.trim();
    let inner = raw
        .strip_prefix("core::result::Result<")
        .or_else(|| raw.strip_prefix("Result<"))
        .or_else(|| raw.strip_prefix("RhaiResultOf<"))
        .map(|rest| {
            // The first generic argument: up to the comma, or the closing `>`, at depth 0.
            let mut depth = 0;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '<' => depth += 1,
                        '>' if depth == 0 => return true,
                        '>' => depth -= 1,
                        ',' if depth == 0 => return true,
                        _ => {}
                    }
                    false
                })
                .map_or(rest.len(), |(i, _)| i);
            &rest[..end]
        })
        .unwrap_or(raw);
    let inner = inner.trim_start_matches("&mut ").trim_start_matches('&');
    if let Some(item) = inner.strip_prefix("alloc::vec::Vec<") {
        return if item.starts_with("u8") {
            "blob".to_owned()
        } else {
            "array".to_owned()
        };
    }
    if inner.starts_with("alloc::collections::btree::map::BTreeMap<") {
        return "map".to_owned();
    }
    let registered = engine.map_type_name(inner);
    if registered != inner && !registered.contains("::") {
        return registered.to_owned();
    }
    let last = inner.rsplit("::").next().unwrap_or(inner);
    match last {
        "()" | "" => "()".to_owned(),
        "str" | "ImmutableString" | "String" => "string".to_owned(),
        "i64" | "INT" => "int".to_owned(),
        "f64" | "FLOAT" => "float".to_owned(),
        "bool" => "bool".to_owned(),
        "Dynamic" => "any".to_owned(),
        "Map" => "map".to_owned(),
        "Array" => "array".to_owned(),
        "Blob" | "Vec<u8>" => "blob".to_owned(),
        "FnPtr" => "Fn".to_owned(),
        other => other.to_owned(),
    }
}

fn doc_text(f: &Value) -> String {
    f["docComments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|d| d.trim_start_matches("///").trim())
        .collect::<Vec<_>>()
        .join(" ")
}

impl ApiIndex {
    /// Reads the engine's metadata (a few milliseconds: build it once, when first needed).
    pub fn of(engine: &Engine) -> ApiIndex {
        let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
        let meta: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
        let mut types: BTreeMap<String, TypeApi> = BTreeMap::new();
        for f in meta["functions"].as_array().into_iter().flatten() {
            let name = f["name"].as_str().unwrap_or_default();
            if name == "to_string" || name == "to_debug" {
                continue;
            }
            let params: Vec<(String, String)> = f["params"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or("_").to_owned(),
                        p["type"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let receiver = params
                .first()
                .filter(|(_, t)| t.starts_with("&mut "))
                .map(|(_, t)| script_type(engine, t));
            let entry = types
                .entry(receiver.clone().unwrap_or_default())
                .or_default();
            let returns = script_type(engine, f["returnType"].as_str().unwrap_or("()"));
            let doc = doc_text(f);
            if let Some(prop) = name.strip_prefix("get$") {
                let p = entry.properties.entry(prop.to_owned()).or_default();
                p.ty = returns;
                p.doc = doc;
            } else if let Some(prop) = name.strip_prefix("set$") {
                entry
                    .properties
                    .entry(prop.to_owned())
                    .or_default()
                    .writable = !doc.contains("read-only");
            } else {
                let name = if name.starts_with("index$") {
                    "[index]".to_owned()
                } else {
                    name.to_owned()
                };
                let skip = usize::from(receiver.is_some());
                entry.methods.push(Method {
                    name,
                    params: params
                        .iter()
                        .skip(skip)
                        .map(|(n, t)| {
                            if n == "_" {
                                script_type(engine, t)
                            } else {
                                format!("{n}: {}", script_type(engine, t))
                            }
                        })
                        .collect(),
                    returns,
                    doc,
                });
            }
        }
        // The metadata's order is not stable between runs: sort by the whole signature.
        for api in types.values_mut() {
            api.methods.sort_by(|a, b| {
                (&a.name, a.params.len(), &a.params).cmp(&(&b.name, b.params.len(), &b.params))
            });
        }
        ApiIndex { types }
    }

    /// The type a member of `ty` gives: a method's return type when `called`, else the
    /// property's type. `None` when unknown or dynamic.
    pub fn member_type(&self, ty: &str, member: &str, called: bool) -> Option<&str> {
        let api = self.types.get(ty)?;
        let found = if called {
            api.methods
                .iter()
                .find(|m| m.name == member)
                .map(|m| m.returns.as_str())
        } else {
            api.properties.get(member).map(|p| p.ty.as_str())
        };
        found.filter(|t| *t != "any")
    }

    /// One type's section of the reference, or `None` for an unknown type.
    pub fn render_type(&self, ty: &str) -> Option<String> {
        let api = self.types.get(ty)?;
        let mut out = format!("{}\n", if ty.is_empty() { "Globals" } else { ty });
        for (name, p) in &api.properties {
            let access = if p.writable {
                "read/write"
            } else {
                "read-only"
            };
            let _ = writeln!(out, "  .{name}: {} ({access})\n      {}", p.ty, p.doc);
        }
        let prefix = if ty.is_empty() { "" } else { "." };
        for m in &api.methods {
            let _ = writeln!(out, "  {prefix}{}\n      {}", m.signature(), m.doc);
        }
        Some(out)
    }

    /// Every property and method called `name`, on any type, with its doc.
    pub fn render_member(&self, name: &str) -> String {
        let mut out = String::new();
        for (ty, api) in &self.types {
            let owner = if ty.is_empty() {
                String::new()
            } else {
                format!("{ty}.")
            };
            if let Some(p) = api.properties.get(name) {
                let _ = writeln!(out, "{owner}{name}: {}\n    {}", p.ty, p.doc);
            }
            for m in api.methods.iter().filter(|m| m.name == name) {
                let _ = writeln!(out, "{owner}{}\n    {}", m.signature(), m.doc);
            }
        }
        out
    }

    /// The whole reference as Markdown: one section per type, its properties as a table, its
    /// methods as a list, each with its doc comment (`docs/api.md`).
    pub fn render_markdown(&self) -> String {
        let mut out = String::from(
            "# lxd-script API reference\n\nGenerated from the engine by `lxd-script api --markdown` (a test \
             keeps this file equal to its output). Types are the script's: `string`, `int`, `map`, \
             `array`, `any`, and lxd-script's own.\n\n",
        );
        let names: Vec<&String> = self.types.keys().filter(|t| !t.is_empty()).collect();
        out.push_str("[Globals](#globals)");
        for ty in &names {
            let _ = write!(out, " · [{ty}](#{})", ty.to_lowercase());
        }
        out.push('\n');
        for ty in std::iter::once(&String::new()).chain(names.iter().copied()) {
            let Some(api) = self.types.get(ty) else {
                continue;
            };
            let title = if ty.is_empty() {
                "Globals"
            } else {
                ty.as_str()
            };
            let _ = write!(out, "\n## {title}\n");
            if !api.properties.is_empty() {
                out.push_str("\n| property | type | access | what |\n|---|---|---|---|\n");
                for (name, p) in &api.properties {
                    let access = if p.writable {
                        "read/write"
                    } else {
                        "read-only"
                    };
                    let _ = writeln!(
                        out,
                        "| `{name}` | {} | {access} | {} |",
                        p.ty,
                        p.doc.replace('|', "\\|")
                    );
                }
            }
            if !api.methods.is_empty() {
                out.push('\n');
                let prefix = if ty.is_empty() { "" } else { "." };
                for m in &api.methods {
                    let _ = writeln!(out, "- `{prefix}{}` — {}", m.signature(), m.doc);
                }
            }
        }
        out
    }

    /// The whole reference as text.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "lxd-script API reference (generated from the engine; `lxd-script api`)\n",
        );
        for ty in self.types.keys() {
            if let Some(section) = self.render_type(ty) {
                out.push('\n');
                out.push_str(&section);
            }
        }
        out
    }
}

/// The reference as text.
pub fn reference(engine: &Engine) -> String {
    ApiIndex::of(engine).render()
}

/// A script type as Rhai's definition files write it (`String`, `Array`, `?` for any).
fn definition_type(script: &str) -> &str {
    match script {
        "string" => "String",
        "array" => "Array",
        "map" => "Map",
        "blob" => "Blob",
        "any" | "" => "?",
        "Fn" => "FnPtr",
        other => other,
    }
}

/// Every function of the engine, standard packages included, as a Rhai definition file
/// (`module static;`, then `fn name(_: Type, ...) -> Type;` with its doc comments) in the
/// script's types, for editors and the Rhai language server.
pub fn definitions(engine: &Engine) -> String {
    let json = engine.gen_fn_metadata_to_json(true).unwrap_or_default();
    let meta: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    let mut functions: Vec<String> = Vec::new();
    for f in meta["functions"].as_array().into_iter().flatten() {
        let name = f["name"].as_str().unwrap_or_default();
        let declared = if let Some(property) = name.strip_prefix("get$") {
            format!("get {property}")
        } else if let Some(property) = name.strip_prefix("set$") {
            format!("set {property}")
        } else {
            name.to_owned()
        };
        let params: Vec<String> = f["params"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let param = p["name"].as_str().unwrap_or("_");
                let ty = script_type(engine, p["type"].as_str().unwrap_or_default());
                format!("{param}: {}", definition_type(&ty))
            })
            .collect();
        let returns = script_type(engine, f["returnType"].as_str().unwrap_or("()"));
        // Operators (`+`, `>>`) are declared with `op` and parameter types only.
        let operator = !name.starts_with(|c: char| c.is_alphabetic() || c == '_');
        let params: Vec<String> = match operator {
            true => f["params"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let ty = script_type(engine, p["type"].as_str().unwrap_or_default());
                    definition_type(&ty).to_owned()
                })
                .collect(),
            false => params,
        };
        let keyword = if operator { "op" } else { "fn" };
        let mut text: String = f["docComments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|line| format!("{line}\n"))
            .collect();
        let _ = write!(text, "{keyword} {declared}({})", params.join(", "));
        if returns != "()" {
            let _ = write!(text, " -> {}", definition_type(&returns));
        }
        text.push(';');
        functions.push(text);
    }
    // The metadata's order is not stable between runs.
    functions.sort();
    functions.dedup();
    format!("module static;\n\n{}\n", functions.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_types_read_as_script_types() {
        let engine = Engine::new();
        let script_type = |t: &str| super::script_type(&engine, t);
        assert_eq!(
            script_type(
                "core::result::Result<lxd_script::script::client::Client,alloc::boxed::Box<rhai::types::error::EvalAltResult>>"
            ),
            "Client"
        );
        assert_eq!(
            script_type("core::result::Result<rhai::types::dynamic::Dynamic,alloc::boxed::Box<x>>"),
            "any"
        );
        assert_eq!(script_type("&mut Instance"), "Instance");
        assert_eq!(script_type("&str"), "string");
        assert_eq!(script_type("i64"), "int");
        assert_eq!(script_type("()"), "()");
        assert_eq!(
            script_type(
                "core::result::Result<alloc::vec::Vec<rhai::types::dynamic::Dynamic>,alloc::boxed::Box<x>>"
            ),
            "array"
        );
    }
}
