//! The caller's terminal, for `interactive()` and `lxd-script shell`: raw mode that is always
//! restored, the window size, and stdin read without a blocking thread.

use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, Interest, ReadBuf};

const STDIN: RawFd = 0;
const STDOUT: RawFd = 1;

/// Raw mode on stdin while alive; the previous settings come back on drop, on every exit path.
pub struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    /// Puts the terminal on stdin in raw mode; `None` when stdin is not a terminal.
    pub fn enable() -> Option<RawMode> {
        // SAFETY: tcgetattr/tcsetattr only read and write the termios struct we own.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::isatty(STDIN) != 1 || libc::tcgetattr(STDIN, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(STDIN, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            Some(RawMode { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enable`.
        unsafe {
            libc::tcsetattr(STDIN, libc::TCSANOW, &self.saved);
        }
    }
}

/// The terminal's size (columns, rows), if stdout is a terminal.
pub fn size() -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ fills the winsize struct we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::ioctl(STDOUT, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0)
            .then_some((ws.ws_col, ws.ws_row))
    }
}

/// Stdin as an async reader that needs no blocking thread, so nothing is left reading the
/// terminal (and eating keystrokes) after a session ends. Stdin is made non-blocking while
/// the reader lives.
pub struct TerminalInput {
    fd: AsyncFd<RawFd>,
    flags: libc::c_int,
}

impl TerminalInput {
    /// Wraps stdin (must run inside the runtime).
    pub fn new() -> io::Result<TerminalInput> {
        // SAFETY: fcntl on stdin with flag values from the system.
        let flags = unsafe { libc::fcntl(STDIN, libc::F_GETFL) };
        if flags < 0 || unsafe { libc::fcntl(STDIN, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: stdin (fd 0) stays open and the same for the whole life of the process.
        match unsafe { AsyncFd::register_with_interest(STDIN, Interest::READABLE) } {
            Ok(fd) => Ok(TerminalInput { fd, flags }),
            Err(e) => {
                // SAFETY: restores the flags read above.
                unsafe { libc::fcntl(STDIN, libc::F_SETFL, flags) };
                Err(io::Error::other(e.to_string()))
            }
        }
    }
}

impl Drop for TerminalInput {
    fn drop(&mut self) {
        // SAFETY: restores the flags read in `new`.
        unsafe { libc::fcntl(STDIN, libc::F_SETFL, self.flags) };
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
            // SAFETY: reads into the initialized, unfilled part of the caller's buffer.
            let result = guard.try_io(|fd| {
                let n = unsafe {
                    libc::read(*fd.get_ref(), unfilled.as_mut_ptr().cast(), unfilled.len())
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
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
