//! The command line: parses arguments, sets up the runtime and Ctrl-C, and runs a command.
//! Returns the process exit status.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::lxd;
use crate::lxd::config::{ClientConfig, ConnectSpec, resolve};
use crate::lxd::exec::ExecOptions;
use crate::lxd::files::remove_abandoned_pushes;
use crate::lxd::local::remove_partial_files;
use crate::lxd::transport::TransportOptions;
use crate::repl::{
    self,
    display::{self, Palette},
};
use crate::script::client::ConnectDefaults;
use crate::script::explain::Hints;
use crate::script::options::{MAX_SECONDS, seconds_to_duration};
use crate::script::run::{self, Outcome};
use crate::script::runtime::{Bridge, Interrupt};
use crate::script::site::ScriptPlan;
use crate::script::{Purpose, RunContext, SCRIPT_STACK_BYTES, build_engine, new_scope};
use crate::terminal;

const EXAMPLES: &str = "\
Examples:
  lxd-script run scripts/tour.rhai              run a script against the default LXD
  lxd-script --remote second run deploy.rhai a  run it against a remote of the lxc configuration
  lxd-script eval 'print(Client().instances.all().len())'
  lxd-script check deploy.rhai                  compile only: errors as file:line:column
  lxd-script repl                               explore a server interactively
  ./deploy.rhai                                 with `#!/usr/bin/env lxd-script` as its first line

Exit status: 0 success, 1 uncaught script error, 2 usage or compile error,
exit(n) gives n, 130 after Ctrl-C.";

/// Automate LXD with Rhai scripts: a pylxd-style API, a REPL, real errors.
#[derive(Debug, Parser)]
#[command(name = "lxd-script", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalOptions,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Options that apply to every command.
#[derive(Debug, Args)]
struct GlobalOptions {
    /// Use this remote of the lxc client configuration for Client()
    #[arg(long, global = true, value_name = "NAME")]
    remote: Option<String>,
    /// Connect Client() to this https:// URL or unix socket path
    #[arg(long, global = true, value_name = "URL|SOCKET")]
    endpoint: Option<String>,
    /// Make every call in this LXD project (checked when Client() connects: a missing one is an error naming those there are)
    #[arg(long, global = true, value_name = "NAME")]
    project: Option<String>,
    /// Fail an ordinary LXD request that takes longer than this many seconds, and a transfer
    /// (file, image, backup) that moves no byte for this long [default: 120]. Operation waits,
    /// events and exec have their own timeouts
    #[arg(long, global = true, value_name = "SECS")]
    timeout: Option<f64>,
    /// Never show progress bars
    #[arg(long, global = true)]
    no_progress: bool,
    /// Log each LXD request on stderr (secrets are masked)
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Stop a script after this many operations (0: no limit), against runaway loops
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    max_operations: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a script file; ARGS are the script's `ARGS`
    Run {
        /// The script (.rhai); `-` reads it from standard input
        script: PathBuf,
        /// Arguments for the script
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run code given on the command line
    Eval {
        /// The code
        code: String,
        /// Arguments for the code (`ARGS`)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Compile scripts without running them; errors as file:line:column: message
    Check {
        /// The scripts
        #[arg(required = true)]
        scripts: Vec<PathBuf>,
    },
    /// Explore a server interactively (the default on a terminal)
    Repl,
    /// Print the API reference (every type, property and method, from the engine itself)
    Api {
        /// Write `.d.rhai` definition files for editors into DIR instead
        #[arg(long, value_name = "DIR", conflicts_with = "markdown")]
        definitions: Option<PathBuf>,
        /// Print the reference as Markdown (`docs/api.md`)
        #[arg(long)]
        markdown: bool,
    },
    /// Open a login shell (or run CMD) in an instance, attached to this terminal
    Shell {
        /// The instance, optionally on a remote: [REMOTE:]INSTANCE
        target: String,
        /// The command to run instead of the login shell
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Show what `apply FILE` would change; FILE's last expression is the site map. Exit
    /// status 0 when the server is as the site says, 3 when there are changes
    Plan {
        /// The script whose last expression is the site (#{projects, networks, profiles, volumes, instances})
        file: PathBuf,
        /// Arguments for the script (`ARGS`)
        args: Vec<String>,
        /// Also plan deleting what apply created and the site no longer names
        #[arg(long)]
        prune: bool,
    },
    /// Make the server as FILE's site says: prints the plan, asks on a terminal (unless --yes),
    /// and carries it out
    Apply {
        /// The script whose last expression is the site
        file: PathBuf,
        /// Arguments for the script (`ARGS`)
        args: Vec<String>,
        /// Delete what apply created and the site no longer names
        #[arg(long)]
        prune: bool,
        /// Allow deleting and remaking what cannot change in place (an instance's image)
        #[arg(long)]
        replace: bool,
        /// How many changes run at once
        #[arg(long, value_name = "N", default_value_t = 8)]
        parallel: u32,
        /// Do not ask for confirmation
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Print the completion script of a shell (see the README for where it goes)
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; `lxd-script man | man -l -` shows it)
    Man,
}

const SUBCOMMANDS: [&str; 11] = [
    "run",
    "plan",
    "apply",
    "eval",
    "check",
    "repl",
    "shell",
    "api",
    "completions",
    "man",
    "help",
];

/// `lxd-script FILE ...` (as a `#!` interpreter) means `lxd-script run FILE ...`.
fn with_implicit_run(mut args: Vec<String>) -> Vec<String> {
    if let Some(first) = args.get(1)
        && !first.starts_with('-')
        && !SUBCOMMANDS.contains(&first.as_str())
        && Path::new(first).is_file()
    {
        args.insert(1, "run".to_owned());
    }
    args
}

/// Runs the command line and returns the exit status.
pub fn main(args: Vec<String>) -> i32 {
    allow_deep_recursion();
    let cli = Cli::parse_from(with_implicit_run(args));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lxd-script: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let interrupt = Interrupt::default();
    // Registered before anything runs, so no Ctrl-C can hit the default handler.
    match runtime.block_on(async { signal(SignalKind::interrupt()) }) {
        Ok(sigint) => {
            runtime.spawn(forward_ctrl_c(sigint, interrupt.clone()));
        }
        Err(e) => eprintln!("lxd-script: Ctrl-C will not be handled: {e}"),
    }
    let timeout = match cli.global.timeout {
        Some(secs) => match seconds_to_duration(secs) {
            Ok(limit) if !limit.is_zero() => Some(limit),
            _ => {
                let shown = if secs.abs() < 1e15 {
                    secs.to_string()
                } else {
                    format!("{secs:e}")
                };
                eprintln!(
                    "lxd-script: --timeout must be a positive number of seconds up to {MAX_SECONDS}, not {shown}"
                );
                return 2;
            }
        },
        None => None,
    };
    let context = |args: Vec<String>, script_dir: Option<PathBuf>| {
        Arc::new(RunContext {
            bridge: Bridge::new(runtime.handle().clone(), interrupt.clone()),
            defaults: ConnectDefaults {
                remote: cli.global.remote.clone(),
                endpoint: cli.global.endpoint.clone(),
                project: cli.global.project.clone(),
                timeout,
                verbose: cli.global.verbose,
            },
            args,
            script_dir,
            max_operations: cli.global.max_operations,
            progress: !cli.global.no_progress,
        })
    };
    let code = match cli.command {
        Some(Command::Run { script, args }) if script == Path::new("-") => match read_stdin() {
            Ok(source) => run_source(&context(args, None), "<stdin>", &source, LastValue::Drop),
            Err(code) => code,
        },
        Some(Command::Run { script, args }) => match std::fs::read_to_string(&script) {
            Ok(source) => {
                let dir = script.parent().map(Path::to_path_buf);
                let name = script.display().to_string();
                run_source(&context(args, dir), &name, &source, LastValue::Drop)
            }
            Err(e) => {
                eprintln!("lxd-script: cannot read {}: {e}", script.display());
                2
            }
        },
        Some(Command::Eval { code, args }) => {
            run_source(&context(args, None), "<eval>", &code, LastValue::Print)
        }
        Some(Command::Check { scripts }) => check(&context(Vec::new(), None), &scripts),
        Some(Command::Repl) => repl::run(&context(Vec::new(), None)),
        Some(Command::Api {
            definitions,
            markdown,
        }) => api(&context(Vec::new(), None), definitions.as_deref(), markdown),
        Some(Command::Shell { target, command }) => {
            shell(&context(Vec::new(), None), &target, command)
        }
        Some(Command::Plan { file, args, prune }) => {
            let dir = file.parent().map(Path::to_path_buf);
            let site = SiteRun {
                file,
                prune,
                apply: None,
            };
            site.run(&context(args, dir))
        }
        Some(Command::Apply {
            file,
            args,
            prune,
            replace,
            parallel,
            yes,
        }) => {
            let dir = file.parent().map(Path::to_path_buf);
            let apply = Some(ApplyFlags {
                replace,
                parallel,
                yes,
            });
            let site = SiteRun { file, prune, apply };
            site.run(&context(args, dir))
        }
        Some(Command::Completions { shell }) => completions(shell),
        Some(Command::Man) => man_page(),
        None if std::io::stdin().is_terminal() => repl::run(&context(Vec::new(), None)),
        None => match read_stdin() {
            Ok(source) => run_source(
                &context(Vec::new(), None),
                "<stdin>",
                &source,
                LastValue::Drop,
            ),
            Err(code) => code,
        },
    };
    // Do not wait for in-flight requests that Ctrl-C abandoned, but leave none of their files.
    runtime.block_on(remove_abandoned_files());
    runtime.shutdown_background();
    code
}

/// The script on standard input, or the exit status of a failed read (said on stderr).
fn read_stdin() -> Result<String, i32> {
    let mut source = String::new();
    match std::io::stdin().read_to_string(&mut source) {
        Ok(_) => Ok(source),
        Err(e) => {
            eprintln!("lxd-script: cannot read the script from stdin: {e}");
            Err(2)
        }
    }
}

/// Lets the main thread's stack, where scripts run, grow to [`SCRIPT_STACK_BYTES`]: scripts
/// recurse (their own functions, deep values) as deep as the engine's call limit. The kernel
/// grows the main stack on demand up to the soft limit it reads at each growth, so raising the
/// limit now is enough; the script stays on the main thread, whose allocations are the
/// cheapest (a thread of its own made start-up slower: see `scripts/bench/NOTES.md`).
fn allow_deep_recursion() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Stack);
    let wanted = SCRIPT_STACK_BYTES as u64;
    if limit.current.is_some_and(|current| current < wanted) {
        let raised = Rlimit {
            current: Some(limit.maximum.map_or(wanted, |max| max.min(wanted))),
            maximum: limit.maximum,
        };
        // Refused, the stack stays as it was: only very deep recursion is affected.
        let _ = setrlimit(Resource::Stack, raised);
    }
}

/// How long removing what interrupted pushes left in instances may take as the process ends.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Removes the temporary files of transfers that Ctrl-C abandoned: local downloads', and those
/// of pushes in their instances (within [`CLEANUP_TIMEOUT`]).
async fn remove_abandoned_files() {
    remove_partial_files();
    let cleanup = async {
        tokio::join!(remove_abandoned_pushes(), run::say_abandoned_operations());
    };
    let _ = tokio::time::timeout(CLEANUP_TIMEOUT, cleanup).await;
}

/// The first Ctrl-C interrupts the script (blocked calls return at once); a second one exits.
async fn forward_ctrl_c(mut sigint: Signal, interrupt: Interrupt) {
    while sigint.recv().await.is_some() {
        if interrupt.is_triggered() {
            remove_abandoned_files().await;
            std::process::exit(130);
        }
        interrupt.trigger();
    }
}

/// What `run_source` does with the value of the script's last expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LastValue {
    /// Drops it (scripts print what they mean to).
    Drop,
    /// Prints it, as the REPL shows values, when it is not `()` (`eval '40 + 2'` prints 42).
    Print,
}

/// Compiles and runs one script, printing an uncaught error, and returns the exit status.
fn run_source(context: &Arc<RunContext>, name: &str, source: &str, last: LastValue) -> i32 {
    let engine = build_engine(context, Purpose::Scripts);
    let mut scope = new_scope(context);
    let outcome = match run::compile(&engine, &scope, name, source) {
        Ok(ast) => match run::run(&engine, &mut scope, &ast, name, &Hints::of_context(context)) {
            Ok(value) => {
                if last == LastValue::Print && !value.is_unit() {
                    println!(
                        "{}",
                        display::render(&engine, &value, Palette::for_stdout())
                    );
                }
                Outcome::Finished
            }
            Err(outcome) => outcome,
        },
        Err(message) => Outcome::Invalid(message),
    };
    let mut code = outcome.report(name);
    // What the script started without waiting is joined now (Ctrl-C stops that too); a failure
    // among it fails the run.
    if outcome != Outcome::Interrupted {
        match context
            .bridge
            .block_on(async { Ok(run::say_unjoined_failures().await) })
        {
            Ok(true) if code == 0 => code = 1,
            Ok(_) => {}
            Err(_) => code = Outcome::Interrupted.report(name),
        }
    }
    // The process exits next. The script's variables are dropped (closing what they hold),
    // but not the engine: freeing its two thousand functions one by one would cost a sixth of
    // `lxd-script eval 1`.
    drop(scope);
    std::mem::forget(engine);
    code
}

/// `lxd-script shell [REMOTE:]INSTANCE [-- CMD...]`: the command's exit status, 1 on an error.
/// It goes straight to the client and the terminal, without a script engine.
fn shell(context: &Arc<RunContext>, target: &str, command: Vec<String>) -> i32 {
    let (remote, instance) = match target.split_once(':') {
        Some((remote, instance)) => (Some(remote.to_owned()), instance),
        None => (None, target),
    };
    let spec = ConnectSpec {
        remote: remote.clone().or_else(|| context.defaults.remote.clone()),
        endpoint: if remote.is_some() {
            None
        } else {
            context.defaults.endpoint.clone()
        },
        project: context.defaults.project.clone(),
        ..ConnectSpec::default()
    };
    let options = TransportOptions {
        timeout: context.defaults.timeout,
        verbose: context.defaults.verbose,
    };
    let bridge = &context.bridge;
    let result = ClientConfig::discover()
        .and_then(|config| resolve(&spec, &config))
        .and_then(|target| lxd::Client::connect(&target, options))
        .and_then(|client| {
            let opts = ExecOptions {
                command,
                ..ExecOptions::default()
            };
            // Not raced against Ctrl-C: the session passes it to the command.
            bridge.wait(terminal::attach(
                &client,
                instance,
                opts,
                bridge.interrupt().token(),
            ))
        });
    match result {
        Ok(code) => i32::try_from(code).unwrap_or(1),
        Err(lxd::Error::Cancelled) => 130,
        Err(err) => {
            eprintln!("lxd-script shell: {}: {err}", err.kind());
            1
        }
    }
}

/// `apply`'s own flags.
struct ApplyFlags {
    replace: bool,
    parallel: u32,
    yes: bool,
}

/// `lxd-script plan FILE` or `apply FILE`: FILE's last expression is the site.
struct SiteRun {
    file: PathBuf,
    prune: bool,
    apply: Option<ApplyFlags>,
}

/// `plan`'s exit status when the server differs from the site.
const PLAN_HAS_CHANGES: i32 = 3;

impl SiteRun {
    fn run(&self, context: &Arc<RunContext>) -> i32 {
        let name = self.file.display().to_string();
        let source = match std::fs::read_to_string(&self.file) {
            Ok(source) => source,
            Err(e) => {
                eprintln!("lxd-script: cannot read {name}: {e}");
                return 2;
            }
        };
        let engine = build_engine(context, Purpose::Scripts);
        let mut scope = new_scope(context);
        let hints = Hints::of_context(context);
        let run = |scope: &mut rhai::Scope<'static>, label: &str, code: &str| {
            run::compile(&engine, scope, label, code)
                .map_err(Outcome::Invalid)
                .and_then(|ast| run::run(&engine, scope, &ast, label, &hints))
        };
        let outcome = (|| {
            let site = run(&mut scope, &name, &source)?;
            if !site.is_map() {
                return Err(Outcome::Failed(format!(
                    "{name}: its last expression is the site map (#{{profiles, networks, volumes, instances}}), not {}",
                    site.type_name()
                )));
            }
            scope.push("__site", site);
            scope.push("__prune", self.prune);
            let plan = run(
                &mut scope,
                "<plan>",
                "Client().plan(__site, #{prune: __prune})",
            )?;
            let Some(plan) = plan.try_cast::<ScriptPlan>() else {
                return Err(Outcome::Failed("<plan>: no plan".into()));
            };
            let color = Palette::for_stdout().color;
            print!("{}", plan.0.render(color));
            let Some(flags) = &self.apply else {
                return Ok(if plan.0.is_empty() {
                    0
                } else {
                    PLAN_HAS_CHANGES
                });
            };
            if plan.0.is_empty() {
                return Ok(0);
            }
            if !flags.yes && std::io::stdin().is_terminal() && !confirmed() {
                eprintln!("lxd-script apply: nothing was changed");
                return Ok(1);
            }
            scope.push("__replace", flags.replace);
            scope.push("__parallel", i64::from(flags.parallel));
            let _carried_out = run(
                &mut scope,
                "<apply>",
                "Client().apply(__site, #{prune: __prune, replace: __replace, parallel: __parallel})",
            )?;
            println!("Applied: the server is as the site says.");
            Ok(0)
        })();
        drop(scope);
        std::mem::forget(engine);
        match outcome {
            Ok(code) => code,
            Err(outcome) => outcome.report(&name),
        }
    }
}

/// Asks on the terminal whether to go on; only `yes` goes on.
fn confirmed() -> bool {
    use std::io::Write;
    print!("Apply these changes? Only 'yes' goes on: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == "yes"
}

/// `lxd-script completions SHELL`: the shell's completion script, from the command line's
/// own definition, on stdout.
fn completions(shell: clap_complete::Shell) -> i32 {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "lxd-script", &mut script);
    write_stdout("completions", &script)
}

/// `lxd-script man`: the man page, from the command line's own definition, on stdout.
fn man_page() -> i32 {
    use clap::CommandFactory;
    let mut page = Vec::new();
    match clap_mangen::Man::new(Cli::command()).render(&mut page) {
        Ok(()) => write_stdout("man", &page),
        Err(e) => {
            eprintln!("lxd-script man: {e}");
            1
        }
    }
}

/// Writes a generated text to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(command: &str, text: &[u8]) -> i32 {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text).and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("lxd-script {command}: {e}");
            1
        }
    }
}

/// Writes Rhai's own definition files (the operators, the built-in syntax) and ours, for every
/// function in the script's types, as `__static__.d.rhai` (Rhai's has Rust's types there).
fn write_definitions(engine: &rhai::Engine, dir: &Path) -> std::io::Result<()> {
    engine.definitions().write_to_dir(dir)?;
    let ours = crate::script::reference::definitions(engine);
    std::fs::write(dir.join("__static__.d.rhai"), ours)
}

/// Prints the API reference (as text or Markdown), or writes `.d.rhai` definitions for editors.
fn api(context: &Arc<RunContext>, definitions: Option<&Path>, markdown: bool) -> i32 {
    let engine = build_engine(context, Purpose::Exploring);
    match definitions {
        None if markdown => {
            let index = crate::script::reference::ApiIndex::of(&engine);
            write_stdout("api", index.render_markdown().as_bytes())
        }
        None => {
            print!("{}", crate::script::reference::reference(&engine));
            0
        }
        Some(dir) => match write_definitions(&engine, dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!(
                    "lxd-script: cannot write definitions to {}: {e}",
                    dir.display()
                );
                1
            }
        },
    }
}

/// Compiles scripts without running them.
fn check(context: &Arc<RunContext>, scripts: &[PathBuf]) -> i32 {
    let engine = build_engine(context, Purpose::Scripts);
    let scope = new_scope(context);
    let mut status = 0;
    for script in scripts {
        let name = script.display().to_string();
        let result = std::fs::read_to_string(script)
            .map_err(|e| format!("{name}: cannot read: {e}"))
            .and_then(|source| run::compile(&engine, &scope, &name, &source).map(|_| ()));
        if let Err(message) = result {
            eprintln!("{message}");
            status = 2;
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_as_first_argument_means_run() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let path = file.path().display().to_string();
        let args = vec!["lxd-script".to_owned(), path.clone(), "a".to_owned()];
        assert_eq!(
            with_implicit_run(args),
            vec!["lxd-script", "run", &path, "a"]
        );
        let args = vec!["lxd-script".to_owned(), "eval".to_owned(), "1".to_owned()];
        assert_eq!(with_implicit_run(args.clone()), args);
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
