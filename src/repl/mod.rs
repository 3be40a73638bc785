//! The REPL: explore a live LXD server interactively.
//!
//! `client` is bound to the default client; variables and functions persist from entry to
//! entry. Tab completes from the engine's metadata (never by running code) and from a cache of
//! the server's names; hints show the signature of the call being typed; incomplete code asks
//! for more lines. Ctrl-C cancels the running entry and keeps the session; a second Ctrl-C at
//! an empty prompt, Ctrl-D or `:quit` leaves. History is kept in the XDG state directory.

mod complete;
pub(crate) mod display;
mod helper;
mod names;

use std::path::PathBuf;
use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, Scope};
use rustyline::config::Configurer;
use rustyline::error::ReadlineError;
use rustyline::history::{DefaultHistory, History};
use rustyline::{CompletionType, Editor};

use self::display::Palette;
use self::helper::{COMMANDS, ReplHelper};
use self::names::NameCache;
use crate::lxd::client::ServerIdentity;
use crate::lxd::{instance, object};
use crate::script::client::Client;
use crate::script::explain::Hints;
use crate::script::reference::script_type;
use crate::script::run::{self, Outcome};
use crate::script::{Purpose, RunContext, build_engine, new_scope};

/// Entries kept in the history file.
const HISTORY_SIZE: usize = 10_000;

/// One REPL session: the engine, the persistent scope and functions, the line editor.
struct Repl {
    engine: Arc<Engine>,
    context: Arc<RunContext>,
    scope: Scope<'static>,
    functions: AST,
    editor: Editor<ReplHelper, DefaultHistory>,
    history: Option<PathBuf>,
    palette: Palette,
}

/// What the loop does after an entry.
enum Next {
    Continue,
    Exit(i32),
}

/// Runs the REPL until Ctrl-D, `:quit` or a second Ctrl-C at an empty prompt; returns the
/// exit status.
pub fn run(context: &Arc<RunContext>) -> i32 {
    let mut repl = match Repl::new(context) {
        Ok(repl) => repl,
        Err(message) => {
            eprintln!("lxd-script: {message}");
            return 1;
        }
    };
    repl.connect_default();
    let code = repl.run();
    // Operations started without waiting are joined on the way out; their failures are said.
    match context
        .bridge
        .block_on(async { Ok(run::say_unjoined_failures().await) })
    {
        Ok(true) if code == 0 => 1,
        _ => code,
    }
}

/// The one line the REPL starts with: which server, where, which project, and where help is.
fn banner(client: &Client) -> String {
    let server = ServerIdentity::of(client.host_info());
    let name = match server.name.as_str() {
        "incus" => "Incus",
        "lxd" => "LXD",
        other => other,
    };
    let place = client
        .remote()
        .map_or_else(|| client.endpoint(), |remote| format!("remote {remote}"));
    format!(
        "lxd-script {}: `client` is {name} {} at {place}, project {}. :help for help, Tab completes.",
        env!("CARGO_PKG_VERSION"),
        server.version,
        client.project()
    )
}

/// The prompt of an entry's further lines: `...` under the end of the first prompt.
fn continuation_prompt(prompt: &str) -> String {
    let width = prompt.chars().count().saturating_sub(1);
    format!("{:>width$} ", "...")
}

/// `$XDG_STATE_HOME/lxd-script/history`, else `~/.local/state/lxd-script/history`.
fn history_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"))
        })?;
    let dir = state.join("lxd-script");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

impl Repl {
    fn new(context: &Arc<RunContext>) -> Result<Repl, String> {
        let engine = Arc::new(build_engine(context, Purpose::Exploring));
        let palette = Palette::for_stdout();
        let mut editor: Editor<ReplHelper, DefaultHistory> =
            Editor::new().map_err(|e| format!("cannot start the line editor: {e}"))?;
        editor.set_completion_type(CompletionType::List);
        editor.set_auto_add_history(false);
        editor.set_tab_stop(4);
        editor
            .set_max_history_size(HISTORY_SIZE)
            .map_err(|e| format!("cannot size the history: {e}"))?;
        editor.set_helper(Some(ReplHelper::new(
            engine.clone(),
            NameCache::default(),
            palette,
        )));
        let history = history_path();
        if let Some(path) = &history {
            // A missing file is a first session; anything else is worth a word.
            if let Err(e) = editor.load_history(path)
                && path.exists()
            {
                eprintln!(
                    "lxd-script: history not loaded from {}: {e}",
                    path.display()
                );
            }
        }
        Ok(Repl {
            scope: new_scope(context),
            engine,
            context: context.clone(),
            functions: AST::empty(),
            editor,
            history,
            palette,
        })
    }

    /// Binds `client` to the default client; says why when it cannot.
    fn connect_default(&mut self) {
        match self.evaluate("<connect>", "Client()") {
            Ok(client) => {
                self.bind_client(client);
                if let Some(client) = self.client() {
                    println!("{}", banner(&client));
                }
            }
            Err(Outcome::Failed(m) | Outcome::Invalid(m)) => {
                eprintln!("{m}\n(no `client` yet: `:remote NAME` or `let client = Client(...)`)");
            }
            Err(_) => {}
        }
        self.after_entry();
    }

    fn bind_client(&mut self, client: Dynamic) {
        self.scope.set_value("client", client);
    }

    fn client(&self) -> Option<Client> {
        self.scope.get_value::<Client>("client")
    }

    fn prompt(&self) -> String {
        match self.client() {
            Some(c) => {
                let place = c.remote().map_or_else(
                    || {
                        let endpoint = c.endpoint();
                        if endpoint.starts_with("unix:") {
                            "local".to_owned()
                        } else {
                            endpoint
                        }
                    },
                    str::to_owned,
                );
                format!("{place}:{}> ", c.project())
            }
            None => "lxd> ".to_owned(),
        }
    }

    fn run(&mut self) -> i32 {
        let mut interrupted_at_prompt = false;
        let mut resumed: Option<String> = None;
        // The lines of an entry still incomplete (an open block, call or string).
        let mut pending = String::new();
        loop {
            let prompt = match pending.is_empty() {
                true => self.prompt(),
                false => continuation_prompt(&self.prompt()),
            };
            let read = match resumed.take() {
                Some(text) => self.editor.readline_with_initial(&prompt, (&text, "")),
                None => self.editor.readline(&prompt),
            };
            let line = match read {
                Ok(line) => line,
                // A byte that is not UTF-8 (typed or pasted): refused, the session and the
                // line being typed kept.
                Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                    resumed = self.editor.helper().and_then(ReplHelper::take_editing);
                    eprintln!("(ignored input that is not UTF-8 text)");
                    continue;
                }
                Err(ReadlineError::Interrupted) if !pending.is_empty() => {
                    pending.clear();
                    eprintln!("(entry dropped)");
                    continue;
                }
                Err(ReadlineError::Interrupted) => {
                    if interrupted_at_prompt {
                        return 0;
                    }
                    interrupted_at_prompt = true;
                    eprintln!("(Ctrl-C again, Ctrl-D or :quit to leave)");
                    continue;
                }
                Err(ReadlineError::Eof) => return 0,
                Err(e) => {
                    eprintln!("lxd-script: {e}");
                    return 1;
                }
            };
            interrupted_at_prompt = false;
            if pending.is_empty() && line.trim().is_empty() {
                continue;
            }
            // An empty line runs an incomplete entry anyway (and shows why it is incomplete).
            let run_anyway = !pending.is_empty() && line.trim().is_empty();
            let line = match pending.is_empty() {
                true => line,
                false if run_anyway => std::mem::take(&mut pending),
                false => format!("{}\n{line}", std::mem::take(&mut pending)),
            };
            if !run_anyway
                && !line.trim_start().starts_with(':')
                && helper::is_incomplete(&self.engine, &line)
            {
                pending = line;
                continue;
            }
            self.remember(&line);
            let next = match line.trim_start().strip_prefix(':') {
                Some(command) => self.command(command.trim()),
                None => self.entry("<repl>", &line),
            };
            self.after_entry();
            if let Next::Exit(code) = next {
                return code;
            }
        }
    }

    fn remember(&mut self, line: &str) {
        let _ = self.editor.add_history_entry(line);
        if let Some(path) = &self.history
            && let Err(e) = self.editor.append_history(path)
        {
            eprintln!("lxd-script: history not saved to {}: {e}", path.display());
            self.history = None;
        }
    }

    /// Runs one entry and shows its value or its error.
    fn entry(&mut self, name: &str, source: &str) -> Next {
        match self.evaluate(name, source) {
            Ok(value) if value.is_unit() => {}
            Ok(value) => println!("{}", display::render(&self.engine, &value, self.palette)),
            Err(Outcome::Exit(code)) => return Next::Exit(code),
            Err(Outcome::Failed(m) | Outcome::Invalid(m)) => eprintln!("{m}"),
            Err(Outcome::Interrupted) => {
                eprintln!("interrupted");
                self.context.bridge.wait(run::say_abandoned_operations());
            }
            Err(Outcome::Finished) => {}
        }
        Next::Continue
    }

    /// Evaluates source in the session's scope; its functions join those of earlier entries.
    fn evaluate(&mut self, name: &str, source: &str) -> Result<Dynamic, Outcome> {
        self.context.bridge.interrupt().reset();
        let ast = self
            .engine
            .compile_with_scope(&self.scope, run::strip_shebang(source))
            .map_err(|e| {
                let source = run::strip_shebang(source);
                Outcome::Invalid(run::describe_parse_error(name, source, &e))
            })?;
        let mut merged = self.functions.merge(&ast);
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &merged)
            .map_err(|e| run::outcome_of(&e, name, &Hints::of_engine(&self.engine)));
        merged.clear_statements();
        self.functions = merged;
        result
    }

    /// Tells the helper what the scope now holds, and the name cache which client to ask.
    fn after_entry(&mut self) {
        let client = self.client();
        let vars = self
            .scope
            .iter_raw()
            .map(|(name, _, value)| {
                (
                    name.to_owned(),
                    script_type(&self.engine, value.type_name()),
                )
            })
            .collect();
        if let Some(helper) = self.editor.helper_mut() {
            helper.vars = vars;
            helper.names.set_client(client.as_ref());
            helper.names.invalidate();
            helper.names.prefetch(instance::COLLECTION);
        }
    }

    /// Runs a `:` command.
    fn command(&mut self, text: &str) -> Next {
        let (name, arg) = text
            .split_once(char::is_whitespace)
            .map_or((text, ""), |(n, a)| (n, a.trim()));
        match name {
            "help" | "h" | "?" => self.help(arg),
            "load" if !arg.is_empty() => match std::fs::read_to_string(arg) {
                Ok(source) => return self.entry(arg, &source),
                Err(e) => eprintln!(":load: cannot read {arg}: {e}"),
            },
            "vars" => self.vars(),
            "show" if !arg.is_empty() => self.show(arg),
            "remote" if !arg.is_empty() => self.switch_client("Client(__arg)", arg),
            "project" if !arg.is_empty() => {
                match self.client().map(|c| c.names(object::PROJECTS)) {
                    None => eprintln!(":project needs a `client`; connect first (:remote NAME)"),
                    Some(Ok(projects)) if projects.iter().any(|p| p == arg) => {
                        self.switch_client("client.with_project(__arg)", arg);
                    }
                    Some(Ok(projects)) => eprintln!(
                        ":project: the server has no project '{arg}'; it has: {}",
                        projects.join(", ")
                    ),
                    Some(Err(e)) => eprintln!(
                        "{}",
                        run::describe_error(&e, ":project", &Hints::of_engine(&self.engine))
                    ),
                }
            }
            "history" => {
                let history = self.editor.history();
                for i in 0..history.len() {
                    if let Ok(Some(entry)) =
                        history.get(i, rustyline::history::SearchDirection::Forward)
                    {
                        println!("{:>5}  {}", i + 1, entry.entry.replace('\n', "\n       "));
                    }
                }
            }
            "clear" => {
                let _ = self.editor.clear_screen();
            }
            "quit" | "q" | "exit" => return Next::Exit(0),
            "load" | "remote" | "project" | "show" => {
                eprintln!(":{name} needs an argument; see :help");
            }
            other => eprintln!(
                "no command :{other}; the commands are {}",
                COMMANDS
                    .iter()
                    .map(|(c, _)| format!(":{c}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
        Next::Continue
    }

    fn help(&self, arg: &str) {
        if arg.is_empty() {
            println!("Rhai with the LXD object API; `client` is the default client.");
            println!("Tab completes (methods, names on the server); Enter on an empty line");
            println!("runs incomplete code anyway; Ctrl-C cancels what runs.\n");
            for (command, what) in COMMANDS {
                println!("  :{command:<8} {what}");
            }
            println!("\nStart with `client.instances.all()` or `:help Instance`.");
            return;
        }
        let Some(helper) = self.editor.helper() else {
            return;
        };
        let index = helper.index();
        let topic = if arg == "Globals" { "" } else { arg };
        let text = index
            .render_type(topic)
            .unwrap_or_else(|| index.render_member(arg.trim_start_matches('.')));
        if text.is_empty() {
            eprintln!(
                "nothing is called {arg}; try :help Client or a method name such as :help create"
            );
        } else {
            print!("{text}");
        }
    }

    /// `:show EXPR`: the value, an object as the tree of its fields (its `to_map()`).
    fn show(&mut self, expr: &str) {
        let value = match self.evaluate(":show", expr) {
            Ok(value) => value,
            Err(Outcome::Failed(m) | Outcome::Invalid(m)) => return eprintln!("{m}"),
            Err(Outcome::Interrupted) => return eprintln!("interrupted"),
            Err(_) => return,
        };
        let ty = script_type(&self.engine, value.type_name());
        let has_fields = self.editor.helper().is_some_and(|h| {
            h.index()
                .types
                .get(&ty)
                .is_some_and(|api| api.methods.iter().any(|m| m.name == "to_map"))
        });
        let shown = if has_fields {
            let title = display::one_line(&self.engine, &value);
            let mark = self.scope.len();
            self.scope.push("__shown", value);
            let fields = self.evaluate(":show", "__shown.to_map()");
            self.scope.rewind(mark);
            match fields {
                Ok(fields) => {
                    println!("{}", self.palette.paint("1", &title));
                    fields
                }
                Err(Outcome::Failed(m) | Outcome::Invalid(m)) => return eprintln!("{m}"),
                Err(_) => return,
            }
        } else {
            value
        };
        println!("{}", display::render(&self.engine, &shown, self.palette));
    }

    fn vars(&self) {
        for (name, constant, value) in self.scope.iter_raw() {
            let ty = script_type(&self.engine, value.type_name());
            let mut shown = display::one_line(&self.engine, value);
            if shown.chars().count() > 100 {
                shown = shown.chars().take(99).chain(['…']).collect();
            }
            let keyword = if constant { "const" } else { "let" };
            println!(
                "{keyword} {}: {ty} = {shown}",
                self.palette.paint("36", name)
            );
        }
    }

    /// Evaluates `code` with `__arg` bound to `arg`; on success `client` becomes the result.
    fn switch_client(&mut self, code: &str, arg: &str) {
        let mark = self.scope.len();
        self.scope.push("__arg", arg.to_owned());
        let result = self.evaluate(":command", code);
        self.scope.rewind(mark);
        match result {
            Ok(client) if client.is::<Client>() => {
                println!("client: {}", display::one_line(&self.engine, &client));
                self.bind_client(client);
            }
            Ok(_) => {}
            Err(Outcome::Failed(m) | Outcome::Invalid(m)) => eprintln!("{m}"),
            Err(Outcome::Interrupted) => eprintln!("interrupted"),
            Err(_) => {}
        }
    }
}
