//! Exec: `POST /1.0/instances/<name>/exec` and its websockets.
//!
//! The protocol (LXD's `shared/ws` and `lxd/instance_exec.go`): every socket must connect within
//! 5 s, so all four connect at once. Data travels in binary frames; an empty *text* frame ends a
//! stream. Stdin gets that barrier as soon as the input ends (at once when there is none). Stdout
//! and stderr are read until their barrier; LXD then drops the connection without a close
//! handshake, which is not an error. Nothing is ever written to stdout/stderr sockets, and the
//! control socket stays open until the command has ended (closing it kills the command). The exit
//! code is the operation's `metadata.return`, read even when the operation failed (126/127).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::client::Client;
use super::error::{Error, Result};
use super::instance;
use super::request::Request;
use super::response::Operation;
use super::websocket::{self, Socket, Writes};

/// What to run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecOptions {
    /// The command and its arguments (no shell is started).
    pub command: Vec<String>,
    /// Extra environment variables.
    pub environment: BTreeMap<String, String>,
    /// The working directory.
    pub cwd: Option<String>,
    /// The uid to run as.
    pub user: Option<u32>,
    /// The gid to run as.
    pub group: Option<u32>,
    /// A PTY session (stdout and stderr merged on one socket).
    pub interactive: bool,
    /// The terminal size of a PTY session (columns, rows).
    pub size: Option<(u16, u16)>,
    /// LXD's `record-output` mode: no websockets; the output goes to log files of the instance,
    /// read when the command has ended (see [`run`]).
    pub record_output: bool,
}

impl ExecOptions {
    /// The API extensions a server needs to honour these options. Without them it would run
    /// the command anyway, as root in `/` or with websockets: a half-success, so callers check
    /// first.
    pub fn required_extensions(&self) -> Vec<&'static str> {
        let mut needed = Vec::new();
        if self.cwd.is_some() || self.user.is_some() || self.group.is_some() {
            needed.push("container_exec_user_group_cwd");
        }
        if self.record_output {
            needed.push("container_exec_recording");
        }
        needed
    }
}

/// The request that starts an exec: one whose sockets the caller connects, or one that records
/// its output.
pub fn request(instance_name: &str, opts: &ExecOptions) -> Request {
    let mut body = json!({
        "command": opts.command,
        "environment": opts.environment,
        "wait-for-websocket": !opts.record_output,
        "interactive": opts.interactive,
        "record-output": opts.record_output,
    });
    if let Some(cwd) = &opts.cwd {
        body["cwd"] = cwd.as_str().into();
    }
    if let Some(user) = opts.user {
        body["user"] = user.into();
    }
    if let Some(group) = opts.group {
        body["group"] = group.into();
    }
    if let Some((width, height)) = opts.size {
        body["width"] = width.into();
        body["height"] = height.into();
    }
    Request::post(format!("{}/exec", instance::path(instance_name)), body)
}

/// A chunk of output, as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// From stdout (or the PTY).
    Stdout(Bytes),
    /// From stderr.
    Stderr(Bytes),
}

/// Standard input of a command.
pub enum Input {
    /// No input: EOF at once.
    Empty,
    /// These bytes, then EOF.
    Bytes(Bytes),
    /// Everything this reader gives, streamed, then EOF.
    Reader(Box<dyn AsyncRead + Send + Unpin>),
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Empty => f.write_str("Empty"),
            Input::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Input::Reader(_) => f.write_str("Reader"),
        }
    }
}

/// A message for the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Send this signal to the command.
    Signal(i32),
    /// Resize the PTY (columns, rows).
    Resize(u16, u16),
}

impl Control {
    fn to_json(self) -> Value {
        match self {
            Control::Signal(signal) => json!({ "command": "signal", "signal": signal }),
            // LXD wants the sizes as strings.
            Control::Resize(width, height) => json!({
                "command": "window-resize",
                "args": { "width": width.to_string(), "height": height.to_string() },
            }),
        }
    }
}

/// How a run may be stopped early.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Kill the command (SIGKILL) after this long and fail with `Timeout`.
    pub timeout: Option<Duration>,
    /// On cancellation (Ctrl-C) send SIGINT (then SIGKILL if it has not ended within 2 s),
    /// and fail with `Cancelled`.
    pub cancel: Option<CancellationToken>,
}

/// Size of the frames stdin is sent in.
const STDIN_FRAME: usize = 64 * 1024;
/// How long a killed command may take to end before we stop waiting.
const GRACE: Duration = Duration::from_secs(10);
/// How long an interrupted command may take to end before it is killed (SIGINT can also be
/// lost: LXD drops a signal that arrives before the command has started).
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);
/// How long the output streams may stay open after the exec's wait failed.
const DRAIN_GRACE: Duration = Duration::from_secs(3);
/// How long a control message or the closing of the control socket may take (a hung daemon
/// stops reading them).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The signals of `timeout` and Ctrl-C.
const SIGKILL: i32 = 9;
const SIGINT: i32 = 2;

/// Runs a command: streams `stdin` in, sends output chunks to `output` as they arrive (a bounded
/// channel: a slow consumer slows the command, memory stays flat), forwards `control` messages,
/// and returns the exit code once every output chunk has been delivered.
///
/// With [`ExecOptions::record_output`] the command runs without websockets (see
/// `run_recorded`): it takes no stdin and no timeout, and `control` is unused.
pub async fn run(
    client: &Client,
    instance_name: &str,
    opts: &ExecOptions,
    stdin: Input,
    output: mpsc::Sender<Output>,
    mut control: mpsc::Receiver<Control>,
    limits: Limits,
) -> Result<i64> {
    if opts.record_output {
        if !matches!(stdin, Input::Empty) {
            return Err(Error::InvalidArgument(
                "a command whose output is recorded runs without stdin: drop 'stdin' or 'record_output'".into(),
            ));
        }
        if limits.timeout.is_some() {
            return Err(Error::InvalidArgument(
                "a command whose output is recorded cannot be timed out (LXD gives no way to signal it): drop 'timeout' or 'record_output'".into(),
            ));
        }
        return run_recorded(client, instance_name, opts, &output, limits.cancel).await;
    }
    let (op, mut ctl, sockets) = start_session(client, instance_name, opts).await?;

    let streams = async {
        match sockets {
            Sockets::Pipes(pipes) => {
                let [s0, stdout, stderr] = *pipes;
                let pump = tokio::spawn(pump_stdin(s0, stdin));
                let (out, err) = tokio::join!(
                    read_stream(stdout, &output, Output::Stdout),
                    read_stream(stderr, &output, Output::Stderr),
                );
                pump.abort();
                out.and(err)
            }
            Sockets::Pty(pty) => pty_session(*pty, stdin, &output).await,
        }
    };
    let wait = client.wait_operation(op.id(), None);
    tokio::pin!(streams, wait);

    let cancel = limits.cancel.unwrap_or_default();
    let far = Duration::from_secs(365 * 24 * 3600);
    let deadline = tokio::time::sleep(limits.timeout.unwrap_or(far));
    tokio::pin!(deadline);
    let drain = tokio::time::sleep(far);
    tokio::pin!(drain);
    let mut streams_done: Option<Result<()>> = None;
    let mut finished: Option<Result<Operation>> = None;
    let mut stopped: Option<Error> = None;
    let mut killed = false;
    let mut control_open = true;
    let mut ctl_open = true;

    while streams_done.is_none() || finished.is_none() {
        tokio::select! {
            r = &mut streams, if streams_done.is_none() => {
                if let Err(e) = r {
                    // Output was lost: end the command now rather than wait for it (it may be
                    // blocked writing to the dead socket, and never end by itself).
                    let _ = send_control(&mut ctl, Control::Signal(SIGKILL)).await;
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ctl.close(None)).await;
                    return Err(e);
                }
                streams_done = Some(r);
            }
            r = &mut wait, if finished.is_none() => {
                if r.is_err() {
                    // The wait failed (the server stopped answering, the operation failed):
                    // the output streams get a short grace, not forever.
                    drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_GRACE);
                }
                finished = Some(r);
            },
            _ = &mut drain, if streams_done.is_none() => {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, ctl.close(None)).await;
                return match finished {
                    Some(Err(e)) => Err(e),
                    _ => Err(Error::Decode("the exec's output never ended".into())),
                };
            },
            c = control.recv(), if control_open => match c {
                Some(c) => send_control(&mut ctl, c).await?,
                None => control_open = false,
            },
            // Keep reading control so its pings are answered; LXD sends nothing else on it.
            m = ctl.next(), if ctl_open => if m.is_none_or(|m| m.is_err()) { ctl_open = false },
            // The time-out, a command that ignored SIGINT, or one that outlived its kill.
            _ = &mut deadline, if limits.timeout.is_some() || stopped.is_some() => {
                if killed {
                    break;
                }
                send_control(&mut ctl, Control::Signal(SIGKILL)).await?;
                killed = true;
                stopped.get_or_insert_with(|| Error::Timeout {
                    what: format!("command {:?}", opts.command),
                    seconds: limits.timeout.map(|t| t.as_secs_f64()).unwrap_or_default(),
                    operation: Some(op.id().to_owned()),
                });
                deadline.as_mut().reset(tokio::time::Instant::now() + GRACE);
            },
            _ = cancel.cancelled(), if stopped.is_none() => {
                send_control(&mut ctl, Control::Signal(SIGINT)).await?;
                stopped = Some(Error::Cancelled);
                deadline.as_mut().reset(tokio::time::Instant::now() + INTERRUPT_GRACE);
            },
        }
    }
    // The command has ended: closing control now kills nothing.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ctl.close(None)).await;
    if let Some(err) = stopped {
        return Err(err);
    }
    if let Some(Err(e)) = streams_done {
        return Err(e);
    }
    match finished {
        Some(ended) => ended_metadata(ended).and_then(|metadata| exit_code(&metadata)),
        None => Err(Error::Decode("the exec operation never ended".into())),
    }
}

/// The metadata of an ended exec operation. 126/127 (not executable, not found) fail the
/// operation but still carry `return`: that is an exit code, not an error.
fn ended_metadata(ended: Result<Operation>) -> Result<Value> {
    match ended {
        Ok(op) => Ok(op.metadata().clone()),
        Err(Error::OperationFailed { metadata, .. }) if metadata.get("return").is_some() => {
            Ok(metadata)
        }
        Err(e) => Err(e),
    }
}

/// Runs a command in LXD's `record-output` mode. LXD points the command's stdout and stderr at
/// log files of the instance, so its output is copied by no one while it runs (the faster way
/// for big outputs: see `scripts/bench/NOTES.md`). Once the command has
/// ended, each log is streamed to `output` (stdout first) and deleted. Nothing arrives before
/// the end, and the command cannot be signalled: a cancelled wait leaves it running, with its
/// logs.
async fn run_recorded(
    client: &Client,
    instance_name: &str,
    opts: &ExecOptions,
    output: &mpsc::Sender<Output>,
    cancel: Option<CancellationToken>,
) -> Result<i64> {
    let op = client.operation(&request(instance_name, opts)).await?;
    let cancel = cancel.unwrap_or_default();
    let metadata = tokio::select! {
        ended = client.wait_operation(op.id(), None) => ended_metadata(ended)?,
        _ = cancel.cancelled() => return Err(Error::Cancelled),
    };
    let exit = exit_code(&metadata)?;
    let log = |fd: &str| {
        metadata
            .get("output")
            .and_then(|logs| logs.get(fd))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Decode(format!("the recorded exec has no log for fd {fd}")))
    };
    let logs = [
        (log("1")?, Output::Stdout as fn(Bytes) -> Output),
        (log("2")?, Output::Stderr),
    ];
    // Both logs are deleted whatever happens; after a failed read the other is not read.
    let mut read = Ok(());
    for (path, wrap) in &logs {
        if read.is_ok() {
            read = read_log(client, path, output, *wrap).await;
        }
    }
    let deletes: Vec<Request> = logs
        .iter()
        .map(|(path, _)| Request::delete(path.as_str()))
        .collect();
    let deleted = futures_util::future::join_all(deletes.iter().map(|req| client.call(req))).await;
    read?;
    deleted.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(exit)
}

/// Streams one recorded log to `output`; stops early, without error, if the receiver is gone.
async fn read_log(
    client: &Client,
    path: &str,
    output: &mpsc::Sender<Output>,
    wrap: fn(Bytes) -> Output,
) -> Result<()> {
    let req = Request::get(path);
    let mut body = client.send(&req, None).await?.into_body();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| client.transport().body_error(e, &req))?;
        if output.send(wrap(chunk)).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// How long one websocket handshake may take: LXD fails the command after waiting 5 s for its
/// sockets, so a later answer can only be a refusal.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(6);
/// How many times a command whose sockets could not be connected is started again.
const START_RETRIES: u32 = 4;

/// Starts the command and connects its sockets. Control connects first, so a failed handshake
/// proves that the command never started (LXD starts it only once every data socket is
/// connected): starting it again is safe. An overloaded LXD sometimes answers a handshake only
/// after it has given up on the command; such a start is retried.
async fn start_session(
    client: &Client,
    instance_name: &str,
    opts: &ExecOptions,
) -> Result<(Operation, Socket, Sockets)> {
    let mut attempt = 0;
    loop {
        let op = client.operation(&request(instance_name, opts)).await?;
        match connect_sockets(client, &op, opts.interactive).await {
            Ok((ctl, sockets)) => return Ok((op, ctl, sockets)),
            Err(e)
                if attempt < START_RETRIES
                    && matches!(e, Error::Connection { .. } | Error::Timeout { .. }) =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Connects control, then the data sockets all at once.
async fn connect_sockets(
    client: &Client,
    op: &Operation,
    interactive: bool,
) -> Result<(Socket, Sockets)> {
    let transport = client.transport();
    let connect = |socket: Request, writes: Writes| async move {
        tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            websocket::connect(transport, socket, None, writes),
        )
        .await
        .map_err(|_| Error::Timeout {
            what: "websocket handshake".into(),
            seconds: HANDSHAKE_TIMEOUT.as_secs_f64(),
            operation: Some(op.id().to_owned()),
        })?
    };
    let ctl = connect(fd_socket(op, "control")?, Writes::Report).await?;
    let sockets = if interactive {
        Sockets::Pty(Box::new(
            connect(fd_socket(op, "0")?, Writes::Report).await?,
        ))
    } else {
        let (s0, s1, s2) = tokio::try_join!(
            connect(fd_socket(op, "0")?, Writes::Report),
            connect(fd_socket(op, "1")?, Writes::DiscardFailed),
            connect(fd_socket(op, "2")?, Writes::DiscardFailed),
        )?;
        Sockets::Pipes(Box::new([s0, s1, s2]))
    };
    Ok((ctl, sockets))
}

/// The websocket request of one of an exec operation's file descriptors.
fn fd_socket(op: &Operation, fd: &str) -> Result<Request> {
    op.metadata()
        .get("fds")
        .and_then(|fds| fds.get(fd))
        .and_then(Value::as_str)
        .map(|secret| websocket::operation_socket(op.id(), secret))
        .ok_or_else(|| Error::Decode(format!("exec operation has no websocket for fd {fd}")))
}

/// The sockets of a session: three pipes, or one PTY.
enum Sockets {
    Pipes(Box<[Socket; 3]>),
    Pty(Box<Socket>),
}

fn exit_code(metadata: &Value) -> Result<i64> {
    metadata
        .get("return")
        .and_then(|r| r.as_i64().or_else(|| r.as_f64().map(|f| f as i64)))
        .ok_or_else(|| Error::Decode(format!("exec ended without an exit code: {metadata}")))
}

async fn send_control(ctl: &mut Socket, c: Control) -> Result<()> {
    let sent = tokio::time::timeout(
        CLOSE_TIMEOUT,
        ctl.send(Message::text(c.to_json().to_string())),
    );
    match sent.await {
        Ok(sent) => sent.map_err(ws_error),
        Err(_) => Err(Error::Timeout {
            what: "a control message to the exec".into(),
            seconds: CLOSE_TIMEOUT.as_secs_f64(),
            operation: None,
        }),
    }
}

fn ws_error(e: WsError) -> Error {
    Error::Connection {
        endpoint: "exec websocket".into(),
        source: Box::new(e),
    }
}

/// True for the ways LXD ends a stream without a close handshake.
fn is_end(e: &WsError) -> bool {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    matches!(
        e,
        WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
    )
}

/// Sends stdin in binary frames, then the empty text frame that means EOF. The socket is kept
/// open afterwards (returned), as LXD's own client does.
async fn pump_stdin(mut ws: Socket, input: Input) -> Result<Socket> {
    match input {
        Input::Empty => {}
        Input::Bytes(bytes) => {
            for chunk in bytes.chunks(STDIN_FRAME) {
                ws.send(Message::binary(bytes.slice_ref(chunk)))
                    .await
                    .map_err(ws_error)?;
            }
        }
        Input::Reader(mut reader) => {
            let mut buf = vec![0u8; STDIN_FRAME];
            loop {
                let n = reader
                    .read(&mut buf)
                    .await
                    .map_err(|e| Error::local("read", "stdin", e))?;
                if n == 0 {
                    break;
                }
                ws.send(Message::binary(Bytes::copy_from_slice(&buf[..n])))
                    .await
                    .map_err(ws_error)?;
            }
        }
    }
    ws.send(Message::text("")).await.map_err(ws_error)?;
    Ok(ws)
}

/// Reads one output stream until its barrier, passing each chunk on as it comes. A stream that
/// ends without its barrier (or a close frame) lost output: that is a `Connection` error.
async fn read_stream(
    mut ws: Socket,
    output: &mpsc::Sender<Output>,
    wrap: fn(Bytes) -> Output,
) -> Result<()> {
    loop {
        let data = match ws.next().await {
            Some(Ok(Message::Binary(data))) => data,
            Some(Ok(Message::Text(text))) if text.is_empty() => break,
            Some(Ok(Message::Text(text))) => Bytes::from(text.as_str().to_owned()),
            Some(Ok(Message::Close(_))) => break,
            Some(Ok(_)) => continue,
            Some(Err(e)) if !is_end(&e) => return Err(ws_error(e)),
            None | Some(Err(_)) => {
                return Err(Error::Connection {
                    endpoint: "exec websocket".into(),
                    source: "the output stream ended before its end marker: output was lost".into(),
                });
            }
        };
        // A consumer that went away (the script stopped) does not stop the drain.
        let _ = output.send(wrap(data)).await;
    }
    Ok(())
}

/// A PTY session: input in binary frames (a local EOF becomes ^D, since a barrier would hang
/// up the PTY), output until the socket ends.
async fn pty_session(pty: Socket, input: Input, output: &mpsc::Sender<Output>) -> Result<()> {
    let (mut sink, mut stream) = pty.split();
    let pump = tokio::spawn(async move {
        let mut reader: Box<dyn AsyncRead + Send + Unpin> = match input {
            Input::Empty => Box::new(tokio::io::empty()),
            Input::Bytes(b) => Box::new(std::io::Cursor::new(b)),
            Input::Reader(r) => r,
        };
        let mut buf = vec![0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = sink
                        .send(Message::binary(Bytes::from_static(b"\x04")))
                        .await;
                    break;
                }
                Ok(n) => {
                    if sink
                        .send(Message::binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        // Keep the socket half alive until the session ends.
        std::future::pending::<()>().await;
    });
    let result = async {
        while let Some(message) = stream.next().await {
            match message {
                Ok(Message::Binary(data)) => {
                    let _ = output.send(Output::Stdout(data)).await;
                }
                Ok(Message::Text(text)) if text.is_empty() => break,
                Ok(Message::Text(text)) => {
                    let _ = output
                        .send(Output::Stdout(Bytes::from(text.as_str().to_owned())))
                        .await;
                }
                Ok(Message::Close(_)) => break,
                Ok(_) => {}
                Err(e) if is_end(&e) => break,
                Err(e) => return Err(ws_error(e)),
            }
        }
        Ok(())
    }
    .await;
    pump.abort();
    result
}

/// The websocket paths of an interactive exec that the caller connects itself, as pylxd's
/// `raw_interactive_execute` returns them: `(ws, control)`.
pub async fn start_raw_interactive(
    client: &Client,
    instance_name: &str,
    opts: &ExecOptions,
) -> Result<(String, String)> {
    let mut opts = opts.clone();
    opts.interactive = true;
    let op = client.operation(&request(instance_name, &opts)).await?;
    let path = |fd| fd_socket(&op, fd).map(|socket| socket.path_and_query(None));
    Ok((path("0")?, path("control")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_requests_wait_for_websockets_and_carry_options() {
        let opts = ExecOptions {
            command: vec!["ls".into(), "-l".into()],
            environment: BTreeMap::from([("A".to_owned(), "1".to_owned())]),
            cwd: Some("/tmp".into()),
            user: Some(1000),
            group: Some(1000),
            interactive: true,
            size: Some((80, 24)),
            record_output: false,
        };
        let r = request("c1", &opts);
        assert_eq!(r.path, "/1.0/instances/c1/exec");
        assert_eq!(
            r.body,
            Some(json!({
                "command": ["ls", "-l"], "environment": {"A": "1"}, "wait-for-websocket": true,
                "interactive": true, "record-output": false, "cwd": "/tmp", "user": 1000,
                "group": 1000, "width": 80, "height": 24
            }))
        );
        let recorded = request(
            "c1",
            &ExecOptions {
                command: vec!["true".into()],
                record_output: true,
                ..ExecOptions::default()
            },
        );
        let body = recorded.body.unwrap_or_default();
        assert_eq!(body["record-output"], json!(true));
        assert_eq!(body["wait-for-websocket"], json!(false));
    }

    #[test]
    fn control_messages_are_lxds_json() {
        assert_eq!(
            Control::Signal(9).to_json(),
            json!({"command": "signal", "signal": 9})
        );
        assert_eq!(
            Control::Resize(100, 40).to_json(),
            json!({"command": "window-resize", "args": {"width": "100", "height": "40"}})
        );
    }

    #[test]
    fn exit_codes_come_from_return() {
        assert_eq!(exit_code(&json!({"return": 127})).ok(), Some(127));
        assert_eq!(exit_code(&json!({"return": 1.0})).ok(), Some(1));
        assert!(exit_code(&json!({})).is_err());
    }

    mod on_a_fake_server {
        use super::*;
        use crate::lxd::fake::{FakeAnswer, FakeLxd, operation};
        use crate::lxd::transport::TransportOptions;
        use std::sync::{Arc, Mutex};

        /// Runs `opts` on `fake`, with `stdin`; the exit code and what came out.
        async fn run_on(
            fake: &FakeLxd,
            opts: ExecOptions,
            stdin: Input,
        ) -> Result<(i64, Vec<u8>, Vec<u8>)> {
            let client = fake.client(TransportOptions::default());
            let (output, mut received) = mpsc::channel(16);
            let (_control, control) = mpsc::channel(1);
            let collected = tokio::spawn(async move {
                let (mut out, mut err) = (Vec::new(), Vec::new());
                while let Some(chunk) = received.recv().await {
                    match chunk {
                        Output::Stdout(b) => out.extend_from_slice(&b),
                        Output::Stderr(b) => err.extend_from_slice(&b),
                    }
                }
                (out, err)
            });
            let code = run(
                &client,
                "c1",
                &opts,
                stdin,
                output,
                control,
                Limits::default(),
            )
            .await;
            let (out, err) = collected.await.expect("collector");
            Ok((code?, out, err))
        }

        fn command(record_output: bool) -> ExecOptions {
            ExecOptions {
                command: vec!["cmd".into()],
                record_output,
                ..ExecOptions::default()
            }
        }

        /// Through websockets: stdin goes in and ends with the EOF frame, stdout and stderr
        /// come out whole, and the exit code is the operation's `return`.
        #[tokio::test]
        async fn a_command_streams_both_ways() {
            let stdin_seen = Arc::new(Mutex::new(Vec::new()));
            let stdin_log = stdin_seen.clone();
            // The command ends once its stdin has: until then its output stays open and a long
            // poll finds it running.
            let (ending, ended) = tokio::sync::watch::channel(false);
            let ending = Arc::new(ending);
            let fds = json!({"fds": {"0": "s0", "1": "s1", "2": "s2", "control": "sc"}});
            let fake = FakeLxd::new(move |req| {
                let path = req.path.as_str();
                if path == "/1.0/instances/c1/exec" {
                    return FakeAnswer::started(operation("x1", 103, fds.clone(), ""));
                }
                if path.starts_with("/1.0/operations/x1/wait") {
                    let code = match *ended.borrow() {
                        true => 200,
                        false => 103,
                    };
                    return FakeAnswer::sync(operation("x1", code, json!({"return": 3}), ""));
                }
                let (stdin_log, ending, mut end) =
                    (stdin_log.clone(), ending.clone(), ended.clone());
                match path.rsplit_once("secret=").map(|(_, s)| s) {
                    Some("s0") => FakeAnswer::websocket(move |mut ws| async move {
                        while let Some(Ok(message)) = ws.next().await {
                            match message {
                                Message::Binary(b) => {
                                    stdin_log.lock().expect("log").extend_from_slice(&b)
                                }
                                Message::Text(t) if t.is_empty() => break,
                                _ => {}
                            }
                        }
                        ending.send_replace(true);
                    }),
                    Some("s1") => FakeAnswer::websocket(|mut ws| async move {
                        let _ = ws.send(Message::binary(&b"hello "[..])).await;
                        let _ = ws.send(Message::binary(&b"world"[..])).await;
                        let _ = end.wait_for(|ended| *ended).await;
                        let _ = ws.close(None).await;
                    }),
                    Some("s2") => FakeAnswer::websocket(|mut ws| async move {
                        let _ = ws.send(Message::binary(&b"oops"[..])).await;
                        let _ = end.wait_for(|ended| *ended).await;
                        let _ = ws.send(Message::text("")).await;
                    }),
                    Some("sc") => FakeAnswer::websocket(|mut ws| async move {
                        while let Some(Ok(_)) = ws.next().await {}
                    }),
                    _ => FakeAnswer::error(404, "not found"),
                }
            });
            let (code, out, err) = run_on(
                &fake,
                command(false),
                Input::Bytes(Bytes::from_static(b"in")),
            )
            .await
            .expect("ran");
            assert_eq!(
                (code, out.as_slice(), err.as_slice()),
                (3, &b"hello world"[..], &b"oops"[..])
            );
            assert_eq!(stdin_seen.lock().expect("log").as_slice(), b"in");
            // Control connects first: LXD starts the command once every socket is in.
            let sockets: Vec<String> = fake
                .seen()
                .into_iter()
                .filter(|s| s.contains("/websocket"))
                .collect();
            assert!(sockets[0].ends_with("secret=sc"), "{sockets:?}");
        }

        /// A refused websocket is LXD's own error, not a broken connection.
        #[tokio::test]
        async fn a_refused_socket_is_the_servers_error() {
            let fake = FakeLxd::new(|req| match req.path.as_str() {
                "/1.0/instances/c1/exec" => FakeAnswer::started(operation(
                    "x1",
                    103,
                    json!({"fds": {"0": "a", "1": "b", "2": "c", "control": "d"}}),
                    "",
                )),
                _ => FakeAnswer::error(403, "not authorized for this socket"),
            });
            let err = run_on(&fake, command(false), Input::Empty)
                .await
                .expect_err("refused");
            assert_eq!(err.kind(), crate::lxd::ErrorKind::Forbidden, "{err}");
            assert!(err.to_string().contains("not authorized"), "{err}");
        }

        /// `record_output`: no websockets; once the command has ended its two logs are read
        /// (stdout first) and both deleted.
        #[tokio::test]
        async fn a_recorded_command_reads_and_deletes_its_logs() {
            let logs = json!({"return": 0, "output": {
                "1": "/1.0/instances/c1/logs/exec_1.stdout",
                "2": "/1.0/instances/c1/logs/exec_1.stderr"}});
            let fake = FakeLxd::new(move |req| match (req.method.as_str(), req.path.as_str()) {
                ("POST", "/1.0/instances/c1/exec") => {
                    assert_eq!(req.json()["record-output"], true);
                    FakeAnswer::started(operation("r1", 103, json!({}), ""))
                }
                ("GET", p) if p.starts_with("/1.0/operations/r1/wait") => {
                    FakeAnswer::sync(operation("r1", 200, logs.clone(), ""))
                }
                ("GET", "/1.0/instances/c1/logs/exec_1.stdout") => {
                    FakeAnswer::Bytes(200, Bytes::from_static(b"out"))
                }
                ("GET", "/1.0/instances/c1/logs/exec_1.stderr") => {
                    FakeAnswer::Bytes(200, Bytes::from_static(b"err"))
                }
                ("DELETE", _) => FakeAnswer::sync(Value::Null),
                _ => FakeAnswer::error(404, "not found"),
            });
            let (code, out, err) = run_on(&fake, command(true), Input::Empty)
                .await
                .expect("ran");
            assert_eq!(
                (code, out.as_slice(), err.as_slice()),
                (0, &b"out"[..], &b"err"[..])
            );
            let deletes = fake
                .seen()
                .into_iter()
                .filter(|s| s.starts_with("DELETE"))
                .count();
            assert_eq!(deletes, 2, "{:?}", fake.seen());
            assert!(!fake.seen().iter().any(|s| s.contains("/websocket")));
        }
    }
}
