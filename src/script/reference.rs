//! The API reference, generated from the engine's own metadata: every type, property, method
//! signature and doc comment, so it can never drift from what scripts can call.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rhai::Engine;
use serde_json::Value;

/// A property: its type, whether scripts may assign it, its doc.
#[derive(Default)]
struct Property {
    ty: String,
    writable: bool,
    doc: String,
}

/// What one type (or the globals) offers.
#[derive(Default)]
struct Section {
    properties: BTreeMap<String, Property>,
    methods: Vec<Entry>,
}

/// One registered function, cleaned up for people.
struct Entry {
    name: String,
    params: Vec<String>,
    returns: String,
    doc: String,
}

/// A Rust type name as scripts know it (the engine knows the names of our types).
fn script_type(engine: &Engine, raw: &str) -> String {
    let raw = raw.trim();
    let inner = raw
        .strip_prefix("core::result::Result<")
        .map(|rest| {
            // The first generic argument, up to the comma at depth 0.
            let mut depth = 0;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '<' => depth += 1,
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

/// The reference as text.
pub fn reference(engine: &Engine) -> String {
    let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
    let meta: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    // owner ("" for globals) -> (properties, methods)
    let mut owners: BTreeMap<String, Section> = BTreeMap::new();
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
        let owner = receiver.clone().unwrap_or_default();
        let entry = owners.entry(owner).or_default();
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
            entry.methods.push(Entry {
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
    let mut out =
        String::from("lxd-script API reference (generated from the engine; `lxd-script api`)\n");
    for (
        owner,
        Section {
            properties,
            mut methods,
        },
    ) in owners
    {
        let _ = writeln!(
            out,
            "\n{}",
            if owner.is_empty() { "Globals" } else { &owner }
        );
        for (name, p) in &properties {
            let access = if p.writable {
                "read/write"
            } else {
                "read-only"
            };
            let _ = writeln!(out, "  .{name}: {} ({access})\n      {}", p.ty, p.doc);
        }
        // The metadata's order is not stable between runs: sort by the whole signature.
        methods.sort_by(|a, b| {
            (&a.name, a.params.len(), &a.params).cmp(&(&b.name, b.params.len(), &b.params))
        });
        for m in methods {
            let prefix = if owner.is_empty() { "" } else { "." };
            let _ = writeln!(
                out,
                "  {prefix}{}({}) -> {}\n      {}",
                m.name,
                m.params.join(", "),
                m.returns,
                m.doc
            );
        }
    }
    out
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
