//! The caller's terminal attached to a PTY session in an instance, for `lxd-script shell` and
//! scripts' `interactive()`: raw mode that is always restored, the window size and its changes,
//! and stdin read without a blocking thread. It knows the LXD client, not Rhai.

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWriteExt, Interest, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::lxd::exec::{self, Control, ExecOptions, Input, Limits, Output};
use crate::lxd::{self, Client};

/// `lxc shell`'s login shell: root's, through `su -l`.
pub const LOGIN_SHELL: [&str; 2] = ["su", "-l"];

/// Attaches this terminal to a PTY session running `opts.command` (a login shell when empty)
/// in `instance`: raw mode while it runs, the terminal's size, resizes on SIGWINCH, the
/// caller's `TERM`. Returns the command's exit code; the terminal is restored on every path.
/// `cancel` (Ctrl-C) interrupts the command as `exec::run` does.
///
/// When stdin or stdout is not a terminal (a pipe, a file), there is no PTY, as with `lxc
/// exec`: stdin goes to the command whole, its stdout and stderr come out apart, unchanged.
pub async fn attach(
    client: &Client,
    instance: &str,
    mut opts: ExecOptions,
    cancel: CancellationToken,
) -> lxd::Result<i64> {
    use tokio::signal::unix::{SignalKind, signal};

    if opts.command.is_empty() {
        opts.command = LOGIN_SHELL.iter().map(|s| (*s).to_owned()).collect();
    }
    if !(io::stdin().is_terminal() && io::stdout().is_terminal()) {
        return attach_streams(client, instance, opts, cancel).await;
    }
    // LXD sets no TERM; pass the caller's, as lxc does.
    opts.environment
        .entry("TERM".to_owned())
        .or_insert_with(|| std::env::var("TERM").unwrap_or_else(|_| "xterm".to_owned()));
    opts.interactive = true;
    opts.size = Some(size().unwrap_or((80, 24)));
    // Restored when dropped: at the end below, or on any early exit.
    let raw = RawMode::enable();
    let input = match TerminalInput::new() {
        Ok(reader) => Input::Reader(Box::new(reader)),
        Err(_) => Input::Reader(Box::new(tokio::io::stdin())),
    };
    let (output, mut received) = mpsc::channel(64);
    let (resize, control) = mpsc::channel(4);
    let resizes = tokio::spawn(async move {
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            if let Some((w, h)) = size()
                && resize.send(Control::Resize(w, h)).await.is_err()
            {
                break;
            }
        }
    });
    let limits = Limits {
        timeout: None,
        cancel: Some(cancel),
    };
    let session = exec::run(client, instance, &opts, input, output, control, limits);
    let shown = async {
        let mut stdout = tokio::io::stdout();
        while let Some(chunk) = received.recv().await {
            let (Output::Stdout(bytes) | Output::Stderr(bytes)) = chunk;
            let _ = stdout.write_all(&bytes).await;
            let _ = stdout.flush().await;
        }
    };
    let (code, ()) = tokio::join!(session, shown);
    resizes.abort();
    drop(raw);
    code
}

/// `attach` without a terminal: no PTY; stdin is the command's, its stdout and stderr ours.
async fn attach_streams(
    client: &Client,
    instance: &str,
    mut opts: ExecOptions,
    cancel: CancellationToken,
) -> lxd::Result<i64> {
    opts.interactive = false;
    opts.size = None;
    let (output, mut received) = mpsc::channel(64);
    let (_control, controls) = mpsc::channel(1);
    let limits = Limits {
        timeout: None,
        cancel: Some(cancel),
    };
    let input = Input::Reader(Box::new(tokio::io::stdin()));
    let session = exec::run(client, instance, &opts, input, output, controls, limits);
    let shown = async {
        let (mut stdout, mut stderr) = (tokio::io::stdout(), tokio::io::stderr());
        while let Some(chunk) = received.recv().await {
            let _ = match chunk {
                Output::Stdout(bytes) => stdout.write_all(&bytes).await,
                Output::Stderr(bytes) => stderr.write_all(&bytes).await,
            };
        }
        let _ = stdout.flush().await;
        let _ = stderr.flush().await;
    };
    let (code, ()) = tokio::join!(session, shown);
    code
}

/// Raw mode on stdin while alive; the previous settings come back on drop, on every exit path.
pub struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    /// Puts the terminal on stdin in raw mode; `None` when stdin is not a terminal.
    pub fn enable() -> Option<RawMode> {
        use rustix::termios::{OptionalActions, isatty, tcgetattr, tcsetattr};
        let stdin = io::stdin();
        if !isatty(stdin.as_fd()) {
            return None;
        }
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        use rustix::termios::{OptionalActions, tcsetattr};
        let _ = tcsetattr(io::stdin().as_fd(), OptionalActions::Now, &self.saved);
    }
}

/// The terminal's size (columns, rows), if stdout is a terminal.
pub fn size() -> Option<(u16, u16)> {
    let size = rustix::termios::tcgetwinsize(io::stdout().as_fd()).ok()?;
    (size.ws_col > 0).then_some((size.ws_col, size.ws_row))
}

/// Stdin as an async reader that needs no blocking thread, so nothing is left reading the
/// terminal (and eating keystrokes) after a session ends. Stdin is made non-blocking while
/// the reader lives.
pub struct TerminalInput {
    fd: AsyncFd<RawFd>,
    flags: rustix::fs::OFlags,
}

impl TerminalInput {
    /// Wraps stdin (must run inside the runtime).
    pub fn new() -> io::Result<TerminalInput> {
        use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
        let stdin = io::stdin();
        let flags = fcntl_getfl(stdin.as_fd())?;
        fcntl_setfl(stdin.as_fd(), flags | OFlags::NONBLOCK)?;
        // SAFETY: stdin stays open, and the same file, for the whole life of the process.
        let registered = unsafe {
            AsyncFd::register_with_interest(stdin.as_fd().as_raw_fd(), Interest::READABLE)
        };
        match registered {
            Ok(fd) => Ok(TerminalInput { fd, flags }),
            Err(e) => {
                let _ = fcntl_setfl(stdin.as_fd(), flags);
                Err(io::Error::other(e.to_string()))
            }
        }
    }
}

impl Drop for TerminalInput {
    fn drop(&mut self) {
        let _ = rustix::fs::fcntl_setfl(io::stdin().as_fd(), self.flags);
    }
}

impl AsyncRead for TerminalInput {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let result = guard.try_io(|_| {
                rustix::io::read(io::stdin().as_fd(), &mut *unfilled).map_err(io::Error::from)
            });
            match result {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}
