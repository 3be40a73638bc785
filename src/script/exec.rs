//! `Instance.execute`, `raw_interactive_execute` and `ExecResult`.
//!
//! The command runs as a task on the runtime; its output comes back to the script thread through
//! a bounded channel, so a callback sees each chunk as it arrives and memory stays flat whatever
//! the size of the output.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use encoding_rs::{Decoder, Encoding, UTF_8};
use rhai::{Blob, Dynamic, FnPtr, Map, NativeCallContext};
use tokio::sync::mpsc;

use super::api::{Api, RegisterInto};
use super::client::Client;
use super::errors::{RhaiResultOf, invalid_argument, lxd_error};
use super::instance::Instance;
use super::options::Options;
use crate::lxd::exec::{self, ExecOptions, Input, Limits, Output};
use crate::terminal;

/// The result of `execute`: the exit code and what the command wrote.
#[derive(Debug, Clone)]
pub struct ExecResult {
    exit_code: i64,
    stdout: Dynamic,
    stderr: Dynamic,
}

impl ExecResult {
    /// The command's exit code.
    pub fn exit_code(&self) -> i64 {
        self.exit_code
    }

    /// What it wrote to stdout and stderr (strings, blobs, or empty when a callback took them).
    pub fn streams(&self) -> (&Dynamic, &Dynamic) {
        (&self.stdout, &self.stderr)
    }
}

/// How many output chunks may wait for the script before the command is slowed down.
const OUTPUT_QUEUE: usize = 16;

/// Turns `cmd` into argv: an array of strings as is, a string split by POSIX shell rules.
pub fn command_words(call: &str, cmd: &Dynamic) -> RhaiResultOf<Vec<String>> {
    let words = if cmd.is_string() {
        shell_words::split(&cmd.to_string())
            .map_err(|e| invalid_argument(format!("{call}: cannot split the command: {e}")))?
    } else {
        super::options::strings(cmd).ok_or_else(|| {
            invalid_argument(format!(
                "{call}: the command must be an array of strings or a string, not {}",
                cmd.type_name()
            ))
        })?
    };
    if words.is_empty() {
        return Err(invalid_argument(format!("{call}: the command is empty")));
    }
    Ok(words)
}

/// Where one output stream goes: a callback or the result; decoded or raw.
struct Sink {
    callback: Option<FnPtr>,
    decoder: Option<Decoder>,
    /// Decoded output, in the buffer type of Rhai's strings: the result takes it over without
    /// a copy (from a `String` it would be copied, doubling the peak for a big output).
    text: smartstring::SmartString<smartstring::LazyCompact>,
    bytes: Vec<u8>,
}

impl Sink {
    fn new(callback: Option<FnPtr>, encoding: Option<&'static Encoding>) -> Self {
        Sink {
            callback,
            decoder: encoding.map(|e| e.new_decoder_without_bom_handling()),
            text: smartstring::SmartString::new(),
            bytes: Vec::new(),
        }
    }

    /// Takes a chunk; a decoder keeps a character split across chunks for the next one.
    fn push(&mut self, ctx: &NativeCallContext, chunk: &[u8], last: bool) -> RhaiResultOf<()> {
        match (&mut self.decoder, &self.callback) {
            (Some(decoder), callback) => {
                let mut text = String::with_capacity(
                    decoder
                        .max_utf8_buffer_length(chunk.len())
                        .unwrap_or(chunk.len() * 3),
                );
                let _ = decoder.decode_to_string(chunk, &mut text, last);
                match callback {
                    Some(f) if !text.is_empty() => {
                        let _ = f.call_within_context::<Dynamic>(ctx, (text,))?;
                    }
                    Some(_) => {}
                    None => self.text.push_str(&text),
                }
            }
            (None, Some(f)) if !chunk.is_empty() => {
                let _ = f.call_within_context::<Dynamic>(ctx, (Blob::from(chunk),))?;
            }
            (None, Some(_)) => {}
            (None, None) => self.bytes.extend_from_slice(chunk),
        }
        Ok(())
    }

    fn finish(mut self, ctx: &NativeCallContext) -> RhaiResultOf<Dynamic> {
        self.push(ctx, &[], true)?;
        Ok(match self.decoder {
            Some(_) => rhai::ImmutableString::from(self.text).into(),
            None => Dynamic::from_blob(self.bytes),
        })
    }
}

/// Options of `execute`, parsed.
struct ExecArgs {
    options: ExecOptions,
    stdin: Input,
    stdout: Option<FnPtr>,
    stderr: Option<FnPtr>,
    encoding: Option<&'static Encoding>,
    timeout: Option<Duration>,
}

const EXEC_KEYS: [&str; 12] = [
    "environment",
    "cwd",
    "user",
    "group",
    "stdin",
    "stdin_file",
    "stdout",
    "stderr",
    "decode",
    "encoding",
    "timeout",
    "record_output",
];

fn fn_option(map: &Map, key: &str) -> RhaiResultOf<Option<FnPtr>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => v.clone().try_cast::<FnPtr>().map(Some).ok_or_else(|| {
            invalid_argument(format!(
                "Instance.execute: option '{key}' must be a function, not {}",
                v.type_name()
            ))
        }),
    }
}

fn id_option(o: &Options, key: &str) -> RhaiResultOf<Option<u32>> {
    o.int(key)?
        .map(|v| {
            u32::try_from(v).map_err(|_| {
                invalid_argument(format!(
                    "Instance.execute: option '{key}' must be a uid/gid, not {v}"
                ))
            })
        })
        .transpose()
}

/// The `stdin` option: nothing, a string or a blob.
fn stdin_input(stdin: Option<&Dynamic>) -> RhaiResultOf<Input> {
    match stdin {
        None => Ok(Input::Empty),
        Some(v) if v.is_unit() => Ok(Input::Empty),
        Some(v) if v.is_string() => Ok(Input::Bytes(Bytes::from(v.to_string()))),
        Some(v) if v.is_blob() => Ok(Input::Bytes(Bytes::from(v.clone().cast::<Blob>()))),
        Some(v) => Err(invalid_argument(format!(
            "Instance.execute: option 'stdin' must be a string or a blob, not {}",
            v.type_name()
        ))),
    }
}

fn parse_args(command: Vec<String>, map: Map) -> RhaiResultOf<ExecArgs> {
    let o = Options::new("Instance.execute", map.clone(), &EXEC_KEYS)?;
    let environment: BTreeMap<String, String> = o
        .map("environment")?
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let stdin = match (map.get("stdin"), o.string("stdin_file")?) {
        (Some(v), Some(_)) if !v.is_unit() => {
            return Err(invalid_argument(
                "Instance.execute: give 'stdin' or 'stdin_file', not both".to_owned(),
            ));
        }
        (_, Some(path)) => {
            // Streamed from the file as the command reads it: constant memory for any size.
            let file = std::fs::File::open(&path).map_err(|e| {
                lxd_error(crate::lxd::Error::local("read the stdin_file", &path, e))
            })?;
            Input::Reader(Box::new(tokio::fs::File::from_std(file)))
        }
        (stdin, None) => stdin_input(stdin)?,
    };
    let decode = o.bool("decode")?.unwrap_or(true);
    let encoding = match (decode, o.string("encoding")?) {
        (false, _) => None,
        (true, None) => Some(UTF_8),
        (true, Some(label)) => Some(Encoding::for_label(label.as_bytes()).ok_or_else(|| {
            invalid_argument(format!(
                "Instance.execute: unknown encoding '{label}' (try utf-8, latin1, utf-16le, shift_jis, ...)"
            ))
        })?),
    };
    Ok(ExecArgs {
        options: ExecOptions {
            command,
            environment,
            cwd: o.string("cwd")?,
            user: id_option(&o, "user")?,
            group: id_option(&o, "group")?,
            interactive: false,
            size: None,
            record_output: o.bool("record_output")?.unwrap_or(false),
        },
        stdin,
        stdout: fn_option(&map, "stdout")?,
        stderr: fn_option(&map, "stderr")?,
        encoding,
        timeout: o.seconds("timeout")?,
    })
}

/// Runs a command in the instance and collects or streams its output.
fn execute(
    ctx: &NativeCallContext,
    instance: &mut Instance,
    cmd: &Dynamic,
    options: Map,
) -> RhaiResultOf<ExecResult> {
    let command = command_words("Instance.execute", cmd)?;
    let args = parse_args(command, options)?;
    instance.client.require_extensions(
        &args.options.required_extensions(),
        "Instance.execute with these options",
    )?;
    instance.join_pending()?;
    let bridge = instance.client.bridge.clone();
    let api = instance.client.lxd.clone();
    let name = instance.name.clone();
    let (tx, mut rx) = mpsc::channel(OUTPUT_QUEUE);
    let (_control_tx, control_rx) = mpsc::channel(1);
    // Ctrl-C stops the command, and so does a callback that throws (or calls exit()).
    let stop = bridge.interrupt().token().child_token();
    let limits = Limits {
        timeout: args.timeout,
        cancel: Some(stop.clone()),
    };
    let opts = args.options;
    let stdin = args.stdin;
    let task = bridge
        .spawn(async move { exec::run(&api, &name, &opts, stdin, tx, control_rx, limits).await });

    let mut stdout = Sink::new(args.stdout, args.encoding);
    let mut stderr = Sink::new(args.stderr, args.encoding);
    let mut failed = None;
    while let Some(chunk) = bridge.wait(rx.recv()) {
        let pushed = match &chunk {
            Output::Stdout(b) => stdout.push(ctx, b, false),
            Output::Stderr(b) => stderr.push(ctx, b, false),
        };
        if let Err(e) = pushed {
            // A callback threw: the command is stopped as on Ctrl-C (SIGINT, then SIGKILL), the
            // rest of its output dropped, and the callback's error (or exit) goes on.
            failed = Some(e);
            stop.cancel();
            rx.close();
            break;
        }
    }
    let outcome = bridge.wait(task);
    if let Some(e) = failed {
        return Err(e);
    }
    let exit_code = outcome
        .map_err(|e| invalid_argument(format!("the exec task failed: {e}")))?
        .map_err(lxd_error)?;
    Ok(ExecResult {
        exit_code,
        stdout: stdout.finish(ctx)?,
        stderr: stderr.finish(ctx)?,
    })
}

/// The options of a PTY session running `command`: `#{environment, cwd, user, group}`.
fn pty_options(call: &str, command: Vec<String>, options: Map) -> RhaiResultOf<ExecOptions> {
    let o = Options::new(call, options, &["environment", "cwd", "user", "group"])?;
    Ok(ExecOptions {
        command,
        environment: o
            .map("environment")?
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        cwd: o.string("cwd")?,
        user: id_option(&o, "user")?,
        group: id_option(&o, "group")?,
        interactive: true,
        size: None,
        record_output: false,
    })
}

/// Attaches the caller's terminal to a PTY session in the instance (see
/// [`crate::terminal::attach`]) and returns the command's exit code.
pub fn interactive(
    client: &Client,
    instance_name: &str,
    command: Option<Vec<String>>,
    options: Map,
) -> RhaiResultOf<i64> {
    let opts = pty_options("Instance.interactive", command.unwrap_or_default(), options)?;
    client.require_extensions(
        &opts.required_extensions(),
        "Instance.interactive with these options",
    )?;
    let cancel = client.bridge.interrupt().token();
    // Not raced against Ctrl-C: the session obeys it itself (SIGINT to the command first).
    client
        .bridge
        .wait(terminal::attach(&client.lxd, instance_name, opts, cancel))
        .map_err(lxd_error)
}

fn raw_interactive(instance: &mut Instance, cmd: &Dynamic, options: Map) -> RhaiResultOf<Map> {
    let command = command_words("Instance.raw_interactive_execute", cmd)?;
    let opts = pty_options("Instance.raw_interactive_execute", command, options)?;
    instance.client.require_extensions(
        &opts.required_extensions(),
        "Instance.raw_interactive_execute with these options",
    )?;
    instance.join_pending()?;
    let (ws, control) = instance
        .client
        .bridge
        .block_on(exec::start_raw_interactive(
            &instance.client.lxd,
            &instance.name,
            &opts,
        ))?;
    let mut map = Map::new();
    map.insert("ws".into(), ws.into());
    map.insert("control".into(), control.into());
    Ok(map)
}

/// Registers `execute`, `raw_interactive_execute` and `ExecResult`.
pub fn register(api: &mut Api) {
    api.register_type_with_name::<ExecResult>("ExecResult");
    rhai::FuncRegistration::new("execute")
        .with_comments(["/// Runs a command (array of strings, or a string split like a shell would) and returns an ExecResult."])
        .register_into(api, |ctx: NativeCallContext, i: &mut Instance, cmd: Dynamic| {
            execute(&ctx, i, &cmd, Map::new())
        });
    rhai::FuncRegistration::new("execute")
        .with_comments(["/// Runs a command with options #{environment, cwd, user, group, stdin, stdin_file, stdout, stderr, decode, encoding, timeout, record_output}."])
        .register_into(api,
            |ctx: NativeCallContext, i: &mut Instance, cmd: Dynamic, options: Map| {
                execute(&ctx, i, &cmd, options)
            },
        );
    rhai::FuncRegistration::new("raw_interactive_execute")
        .with_comments(["/// Starts an interactive command and returns #{ws, control}: the websocket paths to connect to yourself."])
        .register_into(api, |i: &mut Instance, cmd: Dynamic| {
            raw_interactive(i, &cmd, Map::new())
        });
    rhai::FuncRegistration::new("raw_interactive_execute")
        .with_comments(["/// Starts an interactive command with options #{environment, cwd, user, group}; returns #{ws, control}."])
        .register_into(api, |i: &mut Instance, cmd: Dynamic, options: Map| {
            raw_interactive(i, &cmd, options)
        });

    rhai::FuncRegistration::new("interactive")
        .with_comments([
            "/// Attaches your terminal to the instance's login shell; returns its exit code.",
        ])
        .register_into(api, |i: &mut Instance| {
            i.join_pending()?;
            interactive(&i.client, &i.name, None, Map::new())
        });
    rhai::FuncRegistration::new("interactive")
        .with_comments(["/// Attaches your terminal to a command in a PTY (raw mode, resizes); returns its exit code."])
        .register_into(api, |i: &mut Instance, cmd: Dynamic| {
            let command = command_words("Instance.interactive", &cmd)?;
            i.join_pending()?;
            interactive(&i.client, &i.name, Some(command), Map::new())
        });
    rhai::FuncRegistration::new("interactive")
        .with_comments(["/// Attaches your terminal to a command with options #{environment, cwd, user, group}."])
        .register_into(api, |i: &mut Instance, cmd: Dynamic, options: Map| {
            let command = command_words("Instance.interactive", &cmd)?;
            i.join_pending()?;
            interactive(&i.client, &i.name, Some(command), options)
        });
    rhai::FuncRegistration::new_getter("exit_code")
        .with_comments(["/// The command's exit code (a non-zero code is a result, not an error)."])
        .register_into(api, |r: &mut ExecResult| r.exit_code);
    rhai::FuncRegistration::new_getter("stdout")
        .with_comments(["/// What the command wrote to stdout (empty when a callback took it)."])
        .register_into(api, |r: &mut ExecResult| r.stdout.clone());
    rhai::FuncRegistration::new_getter("stderr")
        .with_comments(["/// What the command wrote to stderr (empty when a callback took it)."])
        .register_into(api, |r: &mut ExecResult| r.stderr.clone());
    rhai::FuncRegistration::new_index_getter()
        .with_comments(["/// pylxd's tuple: r[0] is the exit code, r[1] stdout, r[2] stderr."])
        .register_into(api, |r: &mut ExecResult, index: rhai::INT| match index {
            0 => Ok(Dynamic::from_int(r.exit_code)),
            1 => Ok(r.stdout.clone()),
            2 => Ok(r.stderr.clone()),
            _ => Err(invalid_argument(format!(
                "ExecResult has indexes 0 to 2, not {index}"
            ))),
        });
    super::register_display(api, |r: &ExecResult| {
        format!(
            "ExecResult(exit_code: {}, stdout: {:?}, stderr: {:?})",
            r.exit_code,
            r.stdout.to_string(),
            r.stderr.to_string()
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_commands_split_like_a_shell() {
        let words = command_words("t", &Dynamic::from("echo 'a b' \"c d\" e\\ f")).expect("split");
        assert_eq!(words, ["echo", "a b", "c d", "e f"]);
        assert!(command_words("t", &Dynamic::from("echo 'unterminated")).is_err());
        assert!(command_words("t", &Dynamic::from("")).is_err());
        assert!(command_words("t", &Dynamic::from(42_i64)).is_err());
    }
}
