//! Errors that teach. Rhai's own errors name Rust types (`&str | ImmutableString | String`,
//! `i64`) and stop at "not found"; here they are said in the script's terms: its type names,
//! the forms a method does have, the name that was probably meant, and what to write instead of
//! a pylxd habit (`wait=True`, `None`).

use std::cell::OnceCell;
use std::sync::Arc;

use rhai::{ParseErrorType, Position};

use super::api::Purpose;
use super::context::RunContext;
use super::reference::{ApiIndex, Method};

/// The engine's API, read only when an error needs it (a few milliseconds).
pub struct Hints<'a> {
    build: Box<dyn Fn() -> ApiIndex + 'a>,
    index: OnceCell<ApiIndex>,
}

impl<'a> Hints<'a> {
    /// Hints from an engine built for exploring (the REPL's), whose metadata has parameter types.
    pub fn of_engine(engine: &'a rhai::Engine) -> Self {
        Hints {
            build: Box::new(|| ApiIndex::of(engine)),
            index: OnceCell::new(),
        }
    }

    /// Hints for a script run in `context`: an engine with full metadata is built on first need
    /// (the scripts' engine is built without it, to start faster).
    pub fn of_context(context: &'a Arc<RunContext>) -> Self {
        Hints {
            build: Box::new(|| ApiIndex::of(&super::build_engine(context, Purpose::Exploring))),
            index: OnceCell::new(),
        }
    }

    fn index(&self) -> &ApiIndex {
        self.index.get_or_init(|| (self.build)())
    }

    /// Rhai's "Function not found: NAME (TYPES)" in the script's terms: the forms that exist
    /// for that name on that type, or the near name that was probably meant.
    pub fn function_not_found(&self, signature: &str) -> String {
        let Some((name, args)) = signature
            .split_once(" (")
            .and_then(|(name, rest)| Some((name, rest.strip_suffix(')')?)))
        else {
            return format!("Function not found: {signature}");
        };
        let types: Vec<&str> = match args {
            "" => Vec::new(),
            args => args.split(", ").map(script_arg_type).collect(),
        };
        let index = self.index();
        let globals = index.types.get("");
        let receiver = types
            .first()
            .and_then(|t| Some((*t, index.types.get(*t).filter(|_| !t.is_empty())?)));
        if let Some((ty, api)) = receiver {
            let given = types[1..].join(", ");
            let forms = forms_of(&api.methods, name);
            if !forms.is_empty() {
                return format!("{ty}.{name}({given}) does not exist; {ty}.{name} takes{forms}");
            }
            if api.properties.contains_key(name) {
                return format!(
                    "{ty}.{name} is a property, not a method: write `.{name}` without parentheses"
                );
            }
            if globals.is_none_or(|g| forms_of(&g.methods, name).is_empty()) {
                let members = api
                    .methods
                    .iter()
                    .map(|m| m.name.as_str())
                    .chain(api.properties.keys().map(String::as_str));
                return match nearest(name, members) {
                    Some(near) => {
                        let forms = forms_of(&api.methods, near);
                        let shown = if forms.is_empty() {
                            format!("`.{near}`")
                        } else {
                            format!("`{near}`:{forms}")
                        };
                        format!("{ty} has no method '{name}'; did you mean {shown}")
                    }
                    None => format!(
                        "{ty} has no method '{name}'; `lxd-script api` (`:help {ty}` in the REPL) lists what it has"
                    ),
                };
            }
        }
        let given = types.join(", ");
        let global_methods = globals.map(|g| g.methods.as_slice()).unwrap_or_default();
        let forms = forms_of(global_methods, name);
        if !forms.is_empty() {
            return format!("{name}({given}) does not exist; {name} takes{forms}");
        }
        let owners: Vec<&str> = index
            .types
            .iter()
            .filter(|(ty, api)| !ty.is_empty() && api.methods.iter().any(|m| m.name == name))
            .map(|(ty, _)| ty.as_str())
            .collect();
        if let (Some(given_to), false) = (types.first(), owners.is_empty()) {
            return format!(
                "{name} is a method of {}, not of {given_to}",
                owners.join(", ")
            );
        }
        let count = match types.len() {
            1 => "1 parameter".to_owned(),
            n => format!("{n} parameters"),
        };
        match nearest(name, global_methods.iter().map(|m| m.name.as_str())) {
            Some(near) => format!(
                "no function {name}({given}); did you mean `{near}`:{}",
                forms_of(global_methods, near)
            ),
            None => format!(
                "no function {name}({given}), nor a function of the script's own called {name} with {count}"
            ),
        }
    }

    /// Rhai's "Unknown property 'P' - a getter is not registered for type 'T'" (its only
    /// form: the message is all the error carries) in the script's terms.
    pub fn unknown_property(&self, message: &str) -> Option<String> {
        let rest = message.strip_prefix("Unknown property '")?;
        let (property, rest) = rest.split_once("' - a ")?;
        let ty = rest
            .split_once("is not registered for type '")?
            .1
            .strip_suffix('\'')?;
        let ty = script_arg_type(ty);
        if let Some(api) = self.index().types.get(ty).filter(|_| !ty.is_empty()) {
            let members = api
                .properties
                .keys()
                .map(String::as_str)
                .chain(api.methods.iter().map(|m| m.name.as_str()));
            return Some(match nearest(property, members) {
                Some(near) if api.properties.contains_key(near) => {
                    format!("{ty} has no property '{property}'; did you mean `.{near}`?")
                }
                Some(near) => format!(
                    "{ty} has no property '{property}'; did you mean the method `{near}`:{}",
                    forms_of(&api.methods, near)
                ),
                None => format!(
                    "{ty} has no property '{property}'; it has: {}",
                    api.properties
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Some(match ty {
            "array" => format!(
                "an array has no property '{property}': take one item (`list[0].{property}`) or loop over them (`for x in list {{ x.{property} }}`)"
            ),
            "map" => format!("this map has no key '{property}' to read"),
            "()" => format!(
                "() has no property '{property}': the value is empty (a call that returns nothing, or a missing map key)"
            ),
            other => format!("{other} has no property '{property}'"),
        })
    }
}

/// What to write instead of a name other languages have (`True`, `None`), if it is one.
pub fn foreign_constant(name: &str) -> Option<&'static str> {
    match name {
        "True" | "TRUE" => Some("true"),
        "False" | "FALSE" => Some("false"),
        "None" | "null" | "nil" | "NULL" | "undefined" => Some("()"),
        _ => None,
    }
}

/// A compile error's advice when it is a pylxd habit: `start(wait=True)` gets "Rhai has no
/// keyword arguments" and the options map to write instead.
pub fn parse_hint(source: &str, error: &ParseErrorType, position: Position) -> Option<String> {
    let ParseErrorType::MissingToken(token, _) = error else {
        return None;
    };
    if token != "," {
        return None;
    }
    let line = source.lines().nth(position.line()?.checked_sub(1)?)?;
    let column = position.position()?.checked_sub(1)?;
    let at: String = line.chars().skip(column).collect();
    if !at.starts_with('=') || at.starts_with("==") {
        return None;
    }
    let before: String = line.chars().take(column).collect();
    let key: String = before
        .trim_end()
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let raw: String = at[1..]
        .chars()
        .take_while(|c| *c != ',' && *c != ')')
        .collect();
    let raw = raw.trim();
    let value = foreign_constant(raw).unwrap_or(raw);
    if key.is_empty() {
        return None;
    }
    Some(format!(
        "Rhai has no keyword arguments: instead of `{key}={raw}`, pass an options map, `#{{{key}: {value}}}`"
    ))
}

/// A Rhai argument type as scripts know it.
fn script_arg_type(raw: &str) -> &str {
    match raw {
        "&str | ImmutableString | String" | "string" => "string",
        "i64" => "int",
        "f64" => "float",
        other => other,
    }
}

/// The forms of `name` among `methods`, one per line.
fn forms_of(methods: &[Method], name: &str) -> String {
    methods
        .iter()
        .filter(|m| m.name == name)
        .map(|m| format!("\n    {}", m.signature()))
        .collect()
}

/// The candidate closest to `name` by edit distance, when close enough to be a typo.
fn nearest<'n>(name: &str, candidates: impl Iterator<Item = &'n str>) -> Option<&'n str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .filter(|c| !c.starts_with('[') && *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_near_and_other_names_are_not() {
        assert_eq!(edit_distance("gett", "get"), 1);
        assert_eq!(edit_distance("instancs", "instances"), 1);
        assert_eq!(edit_distance("strat", "start"), 1);
        let names = ["get", "all", "exists", "create"];
        assert_eq!(nearest("gett", names.into_iter()), Some("get"));
        assert_eq!(nearest("creat", names.into_iter()), Some("create"));
        assert_eq!(nearest("launch", names.into_iter()), None);
    }

    #[test]
    fn keyword_arguments_get_the_options_map_to_write() {
        let source = "let i = 1;\ni.start(wait=True)";
        let engine = rhai::Engine::new();
        let err = engine.compile(source).expect_err("a keyword argument");
        let hint = parse_hint(source, err.err_type(), err.position()).expect("a hint");
        assert!(hint.contains("#{wait: true}"), "{hint}");
        assert!(hint.starts_with("Rhai has no keyword arguments"), "{hint}");
        let other = engine.compile("f(1 2)").expect_err("a missing comma");
        assert_eq!(
            parse_hint("f(1 2)", other.err_type(), other.position()),
            None
        );
    }

    /// Rhai's wording of a missing getter is all its error carries: this pins it, so an
    /// upgrade that changes it fails here rather than silently losing the hint.
    #[test]
    fn rhai_still_words_a_missing_getter_as_expected() {
        let engine = rhai::Engine::new();
        let err = engine
            .eval::<rhai::Dynamic>("let a = 1; a.nme")
            .expect_err("no getter");
        let rhai::EvalAltResult::ErrorDotExpr(message, _) = *err else {
            panic!("a dot-expression error: {err:?}");
        };
        let hints = Hints {
            build: Box::new(ApiIndex::default),
            index: OnceCell::new(),
        };
        assert_eq!(
            hints.unknown_property(&message).as_deref(),
            Some("int has no property 'nme'")
        );
    }
}
