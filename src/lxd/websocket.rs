//! Websockets to LXD operations (exec streams, events). They upgrade a request through the
//! transport, so they get its connect timeout, TLS pinning and `-v` log like every request. No
//! `Origin` header is sent: LXD checks it when present.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::body::Upgraded;
use super::error::{Error, Result};
use super::request::Request;
use super::transport::Transport;

/// The byte stream under a websocket.
#[derive(Debug)]
pub struct Stream {
    connection: Upgraded,
    /// Pretend that writes to a connection the server already closed succeed (see [`Writes`]).
    discard_failed_writes: bool,
}

/// What to do with writes that fail because the server has closed the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Report them: the usual case.
    Report,
    /// Discard them. For sockets we only read from: the websocket layer still writes pongs to
    /// them, and LXD may have sent its last frames and closed before a pong goes out. A failed
    /// pong must not stop us from reading those frames.
    DiscardFailed,
}

/// A write error that only says the peer is gone.
fn peer_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::NotConnected
    )
}

/// A websocket to LXD.
pub type Socket = WebSocketStream<Stream>;

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().connection).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.connection).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if this.discard_failed_writes && peer_gone(&e) => {
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.connection).poll_flush(cx) {
            Poll::Ready(Err(e)) if this.discard_failed_writes && peer_gone(&e) => {
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().connection).poll_shutdown(cx)
    }
}

/// Opens a websocket with `req` (an operation's socket, the event stream) in `project`. A
/// refusal (a bad event type, a wrong secret) is LXD's error envelope, decoded.
pub async fn connect(
    transport: &Transport,
    req: Request,
    project: Option<&str>,
    writes: Writes,
) -> Result<Socket> {
    let key = generate_key();
    let req = req
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", key.clone());
    let (resp, connection) = transport.upgrade(&req, project).await?;
    if resp.header("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(Error::Decode(format!(
            "{} switched to a websocket without the right Sec-WebSocket-Accept",
            req.path
        )));
    }
    let stream = Stream {
        connection,
        discard_failed_writes: writes == Writes::DiscardFailed,
    };
    // LXD sends up to 128 KiB per message; the default limits (64 MiB) are ample.
    Ok(
        WebSocketStream::from_raw_socket(stream, Role::Client, Some(WebSocketConfig::default()))
            .await,
    )
}

/// The websocket request of an operation's file descriptor.
pub fn operation_socket(operation: &str, secret: &str) -> Request {
    Request::get(format!(
        "/1.0/operations/{}/websocket",
        super::request::segment(operation)
    ))
    .query("secret", secret)
    .server_wide()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_escape_the_secret() {
        assert_eq!(
            operation_socket("abc", "s+/=").path_and_query(Some("p")),
            "/1.0/operations/abc/websocket?secret=s%2B%2F%3D"
        );
    }
}
