//! How the REPL shows a value: LXD objects in one line, maps as indented trees, arrays of
//! objects (or of flat maps) as tables, exec results with their exit code and streams.
//! Colours only on a terminal, and never under `NO_COLOR`.

use std::fmt::Write as _;

use rhai::{Array, Dynamic, Engine, Map, Scope};

use crate::script::summary;

/// Whether to colour, decided once: stdout is a terminal and `NO_COLOR` is unset.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    /// Colour on.
    pub color: bool,
}

impl Palette {
    /// Colours when stdout is a terminal and `NO_COLOR` is not set.
    pub fn for_stdout() -> Palette {
        use std::io::IsTerminal;
        Palette {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// `text` in the SGR style `code` (e.g. "1" bold, "36" cyan), when colouring.
    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

const KEY: &str = "36";
const STRING: &str = "32";
const NUMBER: &str = "33";
const CONSTANT: &str = "35";
const DIM: &str = "2";
const HEADER: &str = "1";
/// The widest a table cell gets before it is cut with `…`.
const CELL_WIDTH: usize = 48;
/// Arrays of scalars up to this width stay on one line.
const INLINE_WIDTH: usize = 72;

/// Renders a value for the REPL (empty for `()`).
pub fn render(engine: &Engine, value: &Dynamic, palette: Palette) -> String {
    let mut out = String::new();
    write_value(engine, value, palette, 0, &mut out);
    out
}

/// The value in one line, as `print` would show it (through the type's `to_debug`).
pub fn one_line(engine: &Engine, value: &Dynamic) -> String {
    if value.is_string() {
        return format!("{:?}", value.to_string());
    }
    // `to_debug` is a native function: `call_fn` only reaches script functions.
    let mut scope = Scope::new();
    scope.push_dynamic("value", value.clone());
    engine
        .eval_with_scope::<String>(&mut scope, "to_debug(value)")
        .unwrap_or_else(|_| value.to_string())
}

fn write_value(engine: &Engine, value: &Dynamic, p: Palette, indent: usize, out: &mut String) {
    if value.is_unit() {
        return;
    }
    if let Some(map) = value.read_lock::<Map>() {
        write_map(engine, &map, p, indent, out);
    } else if let Some(array) = value.read_lock::<Array>() {
        write_array(engine, &array, p, indent, out);
    } else if let Some((code, stdout, stderr)) = summary::exec_parts(value) {
        let status = if code == 0 { STRING } else { "31" };
        let _ = writeln!(out, "{}", p.paint(status, &format!("exit code {code}")));
        for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
            if !text.is_empty() {
                let _ = writeln!(out, "{}", p.paint(KEY, &format!("{name}:")));
                for line in text.lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        trim_newline(out);
    } else {
        out.push_str(&scalar(engine, value, p));
    }
}

/// A value that is not a map or an array, coloured by kind.
fn scalar(engine: &Engine, value: &Dynamic, p: Palette) -> String {
    if value.is_string() {
        let text = value.to_string();
        if text.contains('\n') {
            return text.trim_end_matches('\n').to_owned();
        }
        return p.paint(STRING, &format!("{text:?}"));
    }
    if value.is_int() || value.is_float() {
        return p.paint(NUMBER, &value.to_string());
    }
    if value.is_unit() {
        return p.paint(CONSTANT, "()");
    }
    if value.is_bool() {
        return p.paint(CONSTANT, &value.to_string());
    }
    if let Some(blob) = value.read_lock::<rhai::Blob>() {
        return p.paint(DIM, &format!("<blob of {} bytes>", blob.len()));
    }
    one_line(engine, value)
}

fn is_container(value: &Dynamic) -> bool {
    value.is_map() || value.is_array()
}

fn write_map(engine: &Engine, map: &Map, p: Palette, indent: usize, out: &mut String) {
    if map.is_empty() {
        out.push_str("#{}");
        return;
    }
    let pad = " ".repeat(indent);
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = write!(out, "{pad}{}:", p.paint(KEY, key));
        let inline = inline_array(engine, value, p);
        if let Some(text) = inline {
            let _ = write!(out, " {text}");
        } else if is_container(value) && !is_empty_container(value) {
            out.push('\n');
            write_value(engine, value, p, indent + 2, out);
        } else {
            out.push(' ');
            write_value(engine, value, p, indent + 2, out);
        }
    }
}

fn is_empty_container(value: &Dynamic) -> bool {
    value.read_lock::<Map>().is_some_and(|m| m.is_empty())
        || value.read_lock::<Array>().is_some_and(|a| a.is_empty())
}

/// A short array of scalars in one line (`[a, b]`), else `None`.
fn inline_array(engine: &Engine, value: &Dynamic, p: Palette) -> Option<String> {
    let array = value.read_lock::<Array>()?;
    if array
        .iter()
        .any(|v| is_container(v) || summary::row(v).is_some())
    {
        return None;
    }
    let plain: Vec<String> = array
        .iter()
        .map(|v| scalar(engine, v, Palette { color: false }))
        .collect();
    if plain.iter().map(|s| s.len() + 2).sum::<usize>() > INLINE_WIDTH {
        return None;
    }
    let items: Vec<String> = array.iter().map(|v| scalar(engine, v, p)).collect();
    Some(format!("[{}]", items.join(", ")))
}

fn write_array(engine: &Engine, array: &Array, p: Palette, indent: usize, out: &mut String) {
    if array.is_empty() {
        out.push_str("[]");
        return;
    }
    if let Some(rows) = object_rows(array).or_else(|| flat_map_rows(array)) {
        write_table(&rows, p, indent, out);
        return;
    }
    let whole = Dynamic::from_array(array.clone());
    if let Some(text) = inline_array(engine, &whole, p) {
        let _ = write!(out, "{}{text}", " ".repeat(indent));
        return;
    }
    let pad = " ".repeat(indent);
    for (i, item) in array.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = write!(out, "{pad}- ");
        let mut nested = String::new();
        write_value(engine, item, p, indent + 2, &mut nested);
        out.push_str(nested.trim_start());
    }
}

/// One row per element when every element is an LXD object.
fn object_rows(array: &Array) -> Option<Vec<Vec<(String, String)>>> {
    array
        .iter()
        .map(|v| {
            summary::row(v).map(|row| row.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        })
        .collect()
}

/// One row per element when every element is a map of scalars (a few nested values allowed,
/// shown shortened).
fn flat_map_rows(array: &Array) -> Option<Vec<Vec<(String, String)>>> {
    array
        .iter()
        .map(|v| {
            let map = v.read_lock::<Map>()?;
            if map.is_empty() {
                return None;
            }
            Some(
                map.iter()
                    .map(|(k, v)| {
                        let cell = if let Some(m) = v.read_lock::<Map>() {
                            format!("{{{} keys}}", m.len())
                        } else if let Some(a) = v.read_lock::<Array>() {
                            format!("[{} items]", a.len())
                        } else {
                            v.to_string()
                        };
                        (k.to_string(), cell)
                    })
                    .collect(),
            )
        })
        .collect()
}

fn cut(text: &str) -> String {
    let text = text.replace('\n', " ");
    if text.chars().count() > CELL_WIDTH {
        let mut short: String = text.chars().take(CELL_WIDTH - 1).collect();
        short.push('…');
        short
    } else {
        text
    }
}

/// Rows as an aligned table with upper-case headers; the columns are every key seen, in order.
fn write_table(rows: &[Vec<(String, String)>], p: Palette, indent: usize, out: &mut String) {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        for (k, _) in row {
            if !columns.contains(&k.as_str()) {
                columns.push(k);
            }
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| {
                    row.iter()
                        .find(|(k, _)| k == c)
                        .map(|(_, v)| cut(v))
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = " ".repeat(indent);
    let line = |items: Vec<String>| -> String {
        let mut text = String::new();
        for (i, item) in items.iter().enumerate() {
            let _ = write!(text, "{item:<width$}  ", width = widths[i]);
        }
        text.trim_end().to_owned()
    };
    let header = line(columns.iter().map(|c| c.to_uppercase()).collect());
    let _ = write!(out, "{pad}{}", p.paint(HEADER, &header));
    for row in cells {
        let _ = write!(out, "\n{pad}{}", line(row));
    }
}

fn trim_newline(out: &mut String) {
    while out.ends_with('\n') {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(source: &str) -> String {
        let engine = Engine::new();
        let value: Dynamic = engine.eval(source).expect("eval");
        render(&engine, &value, Palette { color: false })
    }

    #[test]
    fn maps_are_trees() {
        assert_eq!(
            show(
                r#"#{name: "web", config: #{a: 1, b: #{}}, tags: [1, 2], nested: [#{x: [1]}, 3]}"#
            ),
            "config:\n  a: 1\n  b: #{}\nname: \"web\"\nnested:\n  - x: [1]\n  - 3\ntags: [1, 2]"
        );
    }

    #[test]
    fn arrays_of_flat_maps_are_tables() {
        assert_eq!(
            show(r#"[#{name: "a", status: "Running"}, #{name: "bbbb", size: 3}]"#),
            "NAME  STATUS   SIZE\na     Running\nbbbb           3"
        );
    }

    #[test]
    fn scalars() {
        assert_eq!(show("1 + 1"), "2");
        assert_eq!(show(r#""a""#), "\"a\"");
        assert_eq!(show(r#""a\nb\n""#), "a\nb");
        assert_eq!(show("[]"), "[]");
        assert_eq!(show("[true, ()]"), "[true, ()]");
    }
}
