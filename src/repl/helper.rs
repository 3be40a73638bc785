//! The line editor's helper: completion from the engine's metadata and the live server, hints
//! with the signature of the call being typed, syntax highlighting, and a validator that asks
//! for more lines while the code is incomplete.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rhai::{Engine, LexError, ParseErrorType};
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::complete::{Binding, Link, Slot, local_bindings, open_call, word_at};
use super::display::Palette;
use super::names::NameCache;
use crate::lxd::{instance, object};
use crate::script::client::remote_names;
use crate::script::reference::ApiIndex;

/// The REPL's commands, with what each does (for completion and `:help`).
pub const COMMANDS: [(&str, &str); 9] = [
    (
        "help",
        "`:help` this list; `:help NAME` a type, method or property",
    ),
    (
        "load",
        "`:load FILE` runs a script here; its functions and variables stay",
    ),
    ("vars", "the variables, their types and values"),
    (
        "show",
        "`:show EXPR` an object as the tree of its fields (any other value as it is)",
    ),
    (
        "remote",
        "`:remote NAME` points `client` at another remote of the lxc config",
    ),
    (
        "project",
        "`:project NAME` points `client` at another project",
    ),
    ("history", "the history of entries (kept across sessions)"),
    ("clear", "clears the screen"),
    (
        "quit",
        "leaves (so do Ctrl-D and a second Ctrl-C at an empty prompt)",
    ),
];

const KEYWORDS: [&str; 20] = [
    "let", "const", "fn", "if", "else", "for", "in", "while", "loop", "do", "until", "break",
    "continue", "return", "throw", "try", "catch", "import", "export", "as",
];

/// Lines longer than this (in bytes) are shown plain and without hints: colouring and hinting
/// the whole line at every key made pasting a long line quadratic.
const LONG_LINE: usize = 2048;

/// The REPL's helper.
pub struct ReplHelper {
    engine: Arc<Engine>,
    index: OnceLock<ApiIndex>,
    /// The script type of each variable in scope, refreshed after every entry.
    pub vars: BTreeMap<String, String>,
    /// The live server's names.
    pub names: NameCache,
    files: FilenameCompleter,
    history: HistoryHinter,
    palette: Palette,
    /// The line being edited, as of the last key (`None` once it is long): what is given back
    /// to the editor after input it refuses (a byte that is not UTF-8).
    editing: RefCell<Option<String>>,
}

impl ReplHelper {
    /// A helper for `engine`'s types; the API index is read on first use.
    pub fn new(engine: Arc<Engine>, names: NameCache, palette: Palette) -> ReplHelper {
        ReplHelper {
            engine,
            index: OnceLock::new(),
            vars: BTreeMap::new(),
            names,
            files: FilenameCompleter::new(),
            history: HistoryHinter::new(),
            palette,
            editing: RefCell::new(None),
        }
    }

    /// The line that was being edited when the editor gave up on its input, if it is known.
    pub fn take_editing(&self) -> Option<String> {
        self.editing.borrow_mut().take()
    }

    /// The API index (types, properties, methods) of the engine.
    pub fn index(&self) -> &ApiIndex {
        self.index.get_or_init(|| ApiIndex::of(&self.engine))
    }

    /// The script type a chain evaluates to, when it can be told without running anything:
    /// from the variables in scope, or from a `let` or `for` earlier in `text` (the text being
    /// typed, before the chain).
    fn type_of(&self, chain: &[Link], text: &str) -> Option<String> {
        let (head, rest) = chain.split_first()?;
        let index = self.index();
        let local = || {
            let bindings = local_bindings(text);
            let (_, at, binding) = bindings.into_iter().rev().find(|(n, ..)| *n == head.name)?;
            let before = &text[..at];
            match binding {
                Binding::Value(chain) => self.type_of(&chain, before),
                Binding::Element(chain) => self.element_type(&chain, before),
            }
        };
        let mut ty = if head.called {
            index.member_type("", &head.name, true)?.to_owned()
        } else {
            local().or_else(|| self.vars.get(&head.name).cloned())?
        };
        for link in rest {
            ty = index.member_type(&ty, &link.name, link.called)?.to_owned();
        }
        Some(ty)
    }

    /// The type of an element of what `chain` gives: a manager's `all()` lists what its
    /// `get` returns (`client.instances.all()` lists `Instance`s).
    fn element_type(&self, chain: &[Link], text: &str) -> Option<String> {
        let (last, receiver) = chain.split_last()?;
        if last.name != "all" || !last.called {
            return None;
        }
        let manager = self.type_of(receiver, text)?;
        self.index()
            .member_type(&manager, "get", true)
            .map(str::to_owned)
    }

    /// Members of a type: properties as they are, methods with their `(`.
    fn members(&self, ty: &str, partial: &str) -> Vec<Pair> {
        let Some(api) = self.index().types.get(ty) else {
            return Vec::new();
        };
        let mut found: Vec<Pair> = api
            .properties
            .keys()
            .filter(|name| name.starts_with(partial))
            .map(|name| pair(name, name.clone()))
            .collect();
        for m in api.methods.iter().filter(|m| m.name.starts_with(partial)) {
            if m.name.starts_with('[') || found.iter().any(|p| p.display == m.name) {
                continue;
            }
            found.push(pair(&m.name, format!("{}(", m.name)));
        }
        found.sort_by(|a, b| a.display.cmp(&b.display));
        found
    }

    fn globals(&self, partial: &str) -> Vec<Pair> {
        let mut found: Vec<Pair> = self
            .vars
            .keys()
            .filter(|v| v.starts_with(partial))
            .map(|v| pair(v, v.clone()))
            .collect();
        if let Some(api) = self.index().types.get("") {
            for m in api.methods.iter().filter(|m| m.name.starts_with(partial)) {
                if !found.iter().any(|p| p.display == m.name) {
                    found.push(pair(&m.name, format!("{}(", m.name)));
                }
            }
        }
        for k in KEYWORDS.iter().filter(|k| k.starts_with(partial)) {
            found.push(pair(k, format!("{k} ")));
        }
        found.sort_by(|a, b| a.display.cmp(&b.display));
        found
    }

    /// Names for the string argument of `method` on a receiver of type `ty`.
    fn string_argument(&self, ty: Option<&str>, method: &str) -> Vec<String> {
        let collection = match (ty, method) {
            (None, "Client") => return remote_names(),
            (Some("Instances"), _) => instance::COLLECTION,
            (Some("Profiles"), _) => object::PROFILES,
            (Some("Networks"), _) => object::NETWORKS,
            (Some("StoragePools"), _) => object::STORAGE_POOLS,
            (Some("Projects"), _) | (Some("Client"), "with_project") => object::PROJECTS,
            (Some("Images"), "get_by_alias") => object::IMAGE_ALIASES,
            (Some("Images"), _) => object::IMAGES,
            _ => return Vec::new(),
        };
        self.names.names(collection)
    }

    fn command_argument(&self, command: &str, partial: &str) -> Vec<Pair> {
        let names: Vec<String> = match command {
            "help" => {
                let index = self.index();
                let mut all: Vec<String> = index.types.keys().cloned().collect();
                for api in index.types.values() {
                    all.extend(api.properties.keys().cloned());
                    all.extend(api.methods.iter().map(|m| m.name.clone()));
                }
                all.sort();
                all.dedup();
                all
            }
            "remote" => remote_names(),
            "project" => self.names.names(object::PROJECTS),
            _ => Vec::new(),
        };
        names
            .into_iter()
            .filter(|n| n.starts_with(partial) && !n.is_empty())
            .map(|n| pair(&n, n.clone()))
            .collect()
    }

    /// The signature hint for the innermost open call, e.g. `create(cfg: map, wait: bool)`.
    fn signature_hint(&self, text: &str) -> Option<String> {
        let open = open_call(text)?;
        let chain = super::complete::chain_before(text[..open].trim_end())?;
        let (last, receiver) = chain.split_last()?;
        let ty = if receiver.is_empty() {
            String::new()
        } else {
            self.type_of(receiver, text)?
        };
        let api = self.index().types.get(&ty)?;
        let signatures: Vec<String> = api
            .methods
            .iter()
            .filter(|m| m.name == last.name)
            .map(|m| m.signature())
            .collect();
        if signatures.is_empty() {
            return None;
        }
        Some(format!("   {}", signatures.join("  |  ")))
    }
}

fn pair(display: &str, replacement: String) -> Pair {
    Pair {
        display: display.to_owned(),
        replacement,
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let word = word_at(line, pos);
        let candidates = match &word.slot {
            Slot::Command => COMMANDS
                .iter()
                .filter(|(c, _)| c.starts_with(&word.partial))
                .map(|(c, _)| pair(c, format!("{c} ")))
                .collect(),
            Slot::CommandArg(command) if command == "load" => {
                return self.files.complete_path(line, pos);
            }
            Slot::CommandArg(command) => self.command_argument(command, &word.partial),
            Slot::Global => self.globals(&word.partial),
            Slot::Member(chain) => match self.type_of(chain, &line[..word.start]) {
                Some(ty) => self.members(&ty, &word.partial),
                None => Vec::new(),
            },
            Slot::StringArg { chain, method } => {
                let ty = if chain.is_empty() {
                    None
                } else {
                    self.type_of(chain, &line[..word.start])
                };
                if !chain.is_empty() && ty.is_none() {
                    Vec::new()
                } else {
                    let mut names = self.string_argument(ty.as_deref(), method);
                    names.sort();
                    names.dedup();
                    names
                        .into_iter()
                        .filter(|n| n.starts_with(&word.partial))
                        .map(|n| pair(&n, format!("{n}\"")))
                        .collect()
                }
            }
        };
        Ok((word.start, candidates))
    }
}

impl Hinter for ReplHelper {
    type Hint = ReplHint;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<ReplHint> {
        // The editor asks for a hint after every key: the moment to note the line.
        let long = line.len() > LONG_LINE;
        match (&mut *self.editing.borrow_mut(), long) {
            (Some(editing), false) => {
                editing.clear();
                editing.push_str(line);
            }
            (editing, false) => *editing = Some(line.to_owned()),
            (editing, true) => *editing = None,
        }
        if long || pos < line.len() || line.trim_start().starts_with(':') {
            return None;
        }
        if let Some(signature) = self.signature_hint(line) {
            return Some(ReplHint {
                display: signature,
                completion: None,
            });
        }
        self.history.hint(line, pos, ctx).map(|rest| ReplHint {
            completion: Some(rest.clone()),
            display: rest,
        })
    }
}

/// A hint: a signature (shown only) or the rest of a history entry (accepted with →).
pub struct ReplHint {
    display: String,
    completion: Option<String>,
}

impl rustyline::hint::Hint for ReplHint {
    fn display(&self) -> &str {
        &self.display
    }

    fn completion(&self) -> Option<&str> {
        self.completion.as_deref()
    }
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.palette.color || line.len() > LONG_LINE {
            return Cow::Borrowed(line);
        }
        Cow::Owned(highlight(line, self.palette))
    }

    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        if self.palette.color {
            Cow::Owned(self.palette.paint("1;32", prompt))
        } else {
            Cow::Borrowed(prompt)
        }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.palette.color {
            Cow::Owned(self.palette.paint("2", hint))
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight_char(&self, line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.palette.color && line.len() <= LONG_LINE
    }
}

/// Colours a line of Rhai: strings, numbers, keywords, comments and `:` commands.
pub fn highlight(line: &str, palette: Palette) -> String {
    if line.trim_start().starts_with(':') {
        return palette.paint("36", line);
    }
    let mut out = String::with_capacity(line.len() * 2);
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut i = 0;
    let end_of = |j: usize| chars.get(j).map_or(line.len(), |&(b, _)| b);
    while i < chars.len() {
        let (start, c) = chars[i];
        let mut j = i + 1;
        let style = if c == '"' || c == '`' {
            while j < chars.len() && chars[j].1 != c {
                if chars[j].1 == '\\' && c == '"' {
                    j += 1;
                }
                j += 1;
            }
            j = (j + 1).min(chars.len());
            Some("32")
        } else if c == '/' && chars.get(j).is_some_and(|&(_, n)| n == '/') {
            while j < chars.len() && chars[j].1 != '\n' {
                j += 1;
            }
            Some("2")
        } else if c.is_ascii_digit() {
            while j < chars.len() && (chars[j].1.is_ascii_alphanumeric() || chars[j].1 == '.') {
                j += 1;
            }
            Some("33")
        } else if c.is_ascii_alphabetic() || c == '_' {
            while j < chars.len() && (chars[j].1.is_ascii_alphanumeric() || chars[j].1 == '_') {
                j += 1;
            }
            let word = &line[start..end_of(j)];
            if KEYWORDS.contains(&word) || ["true", "false"].contains(&word) {
                Some("35")
            } else {
                None
            }
        } else {
            None
        };
        let piece = &line[start..end_of(j)];
        match style {
            Some(code) => out.push_str(&palette.paint(code, piece)),
            None => out.push_str(piece),
        }
        i = j;
    }
    out
}

impl Validator for ReplHelper {
    /// Every line is submitted: the REPL gathers an incomplete entry's lines itself, each after
    /// a continuation prompt. A paste of several lines is one line of the editor.
    fn validate(&self, _ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(ValidationResult::Valid(None))
    }
}

/// Whether `input` needs more lines (an open block, call, string, or a statement cut short).
pub fn is_incomplete(engine: &Engine, input: &str) -> bool {
    matches!(validate(engine, input), ValidationResult::Incomplete)
}

/// Whether `input` is ready to run: incomplete code (an open block, call, string, or a
/// statement cut short) asks for another line; an empty last line always submits.
pub fn validate(engine: &Engine, input: &str) -> ValidationResult {
    if input.trim_start().starts_with(':') || input.ends_with('\n') {
        return ValidationResult::Valid(None);
    }
    let Err(err) = engine.compile(input) else {
        return ValidationResult::Valid(None);
    };
    // Rhai places "missing" errors just past the last character when the input ran out.
    let last_line = input.lines().count().max(1);
    let last_len = input.lines().last().map_or(0, |l| l.chars().count());
    let position = err.position();
    let at_end = position.line().is_none_or(|l| {
        l > last_line || (l == last_line && position.position().is_none_or(|c| c > last_len))
    });
    match err.err_type() {
        ParseErrorType::UnexpectedEOF => ValidationResult::Incomplete,
        ParseErrorType::MissingToken(..) if at_end => ValidationResult::Incomplete,
        ParseErrorType::BadInput(LexError::UnterminatedString) => ValidationResult::Incomplete,
        _ => ValidationResult::Valid(None),
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn incomplete(source: &str) -> bool {
        matches!(
            validate(&Engine::new(), source),
            ValidationResult::Incomplete
        )
    }

    #[test]
    fn incomplete_code_asks_for_more() {
        for open in [
            "fn f() {",
            "[1, 2",
            "#{ a: 1,",
            "print(1",
            "let x = ",
            "if true { 1 } else",
            "\"abc",
            "`abc",
            "for i in [1] {\n  print(i);",
        ] {
            assert!(incomplete(open), "{open:?} is incomplete");
        }
        for done in [
            "1 + 1",
            "fn f() { 1 }",
            "let x = )",
            ":help",
            "fn f() {\n",
            "print(1))",
        ] {
            assert!(!incomplete(done), "{done:?} is ready");
        }
    }

    #[test]
    fn highlighting_keeps_the_text() {
        let palette = Palette { color: true };
        let line = r#"let x = f("a\"b", 42); // note"#;
        let coloured = highlight(line, palette);
        let plain: String = strip_ansi(&coloured);
        assert_eq!(plain, line);
        assert!(coloured.contains("\x1b[35mlet\x1b[0m"));
        assert!(coloured.contains("\x1b[33m42\x1b[0m"));
        assert_eq!(strip_ansi(&highlight("\"open", palette)), "\"open");
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Completions of `line` (the cursor at its end) with `client` in scope.
    fn completed(line: &str) -> Vec<String> {
        use crate::script::client::ConnectDefaults;
        use crate::script::runtime::{Bridge, Interrupt};
        use crate::script::{Purpose, RunContext, build_engine};
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let context = Arc::new(RunContext {
            bridge: Bridge::new(runtime.handle().clone(), Interrupt::default()),
            defaults: ConnectDefaults::default(),
            args: Vec::new(),
            script_dir: None,
            max_operations: 0,
            progress: false,
        });
        let engine = Arc::new(build_engine(&context, Purpose::Exploring));
        let mut helper = ReplHelper::new(engine, NameCache::default(), Palette { color: false });
        helper.vars.insert("client".into(), "Client".into());
        let history = rustyline::history::DefaultHistory::new();
        let ctx = Context::new(&history);
        let (_, pairs) = helper.complete(line, line.len(), &ctx).expect("complete");
        pairs.into_iter().map(|p| p.display).collect()
    }

    /// A loop variable and a `let` earlier on the line complete as what they hold.
    #[test]
    fn loop_variables_and_earlier_lets_complete() {
        assert_eq!(
            completed("for x in client.instances.all() { x.sna"),
            ["snapshots"]
        );
        assert_eq!(
            completed(r#"let p = client.profiles.get("default"); p.desc"#),
            ["description"]
        );
        assert_eq!(
            completed(r#"let s = client.instances.get("a").snapshots; for t in s.all() { t.resto"#),
            ["restore"]
        );
    }
}
