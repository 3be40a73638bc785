//! Websockets to LXD operations (exec streams, events), over the same endpoint and TLS settings
//! as the transport. No `Origin` header is sent: LXD checks it when present.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use super::error::{Error, Result};
use super::request::Request;
use super::transport::{Endpoint, Transport};

/// The connection under a websocket: a unix socket or TLS over TCP.
#[derive(Debug)]
enum Connection {
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The byte stream under a websocket.
#[derive(Debug)]
pub struct Stream {
    connection: Connection,
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
        match &mut self.get_mut().connection {
            Connection::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = match &mut this.connection {
            Connection::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        match result {
            Poll::Ready(Err(e)) if this.discard_failed_writes && peer_gone(&e) => {
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let result = match &mut this.connection {
            Connection::Unix(s) => Pin::new(s).poll_flush(cx),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        };
        match result {
            Poll::Ready(Err(e)) if this.discard_failed_writes && peer_gone(&e) => {
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().connection {
            Connection::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Connection::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens a websocket on `path_and_query` (e.g. `/1.0/operations/<id>/websocket?secret=...`).
pub async fn connect(
    transport: &Transport,
    path_and_query: &str,
    writes: Writes,
) -> Result<Socket> {
    let endpoint = transport.endpoint();
    let connection_error = |message: String| Error::Connection {
        endpoint: endpoint.to_string(),
        message,
    };
    let (connection, url) = match endpoint {
        Endpoint::Unix(path) => {
            let stream = UnixStream::connect(path)
                .await
                .map_err(|e| connection_error(e.to_string()))?;
            (
                Connection::Unix(stream),
                format!("ws://lxd{path_and_query}"),
            )
        }
        Endpoint::Https(base) => {
            let authority = base.trim_start_matches("https://");
            let tcp = TcpStream::connect(authority)
                .await
                .map_err(|e| connection_error(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            let config = transport
                .tls_config()
                .ok_or_else(|| Error::Tls(format!("no TLS settings for {base}")))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config.clone()));
            let tls = connector
                .connect(server_name(authority)?, tcp)
                .await
                .map_err(|e| Error::Tls(format!("TLS handshake with {base} failed: {e}")))?;
            (
                Connection::Tls(Box::new(tls)),
                format!("wss://{authority}{path_and_query}"),
            )
        }
    };
    let request = url
        .into_client_request()
        .map_err(|e| Error::InvalidArgument(format!("bad websocket URL: {e}")))?;
    let stream = Stream {
        connection,
        discard_failed_writes: writes == Writes::DiscardFailed,
    };
    // LXD sends up to 128 KiB per message; the default limits (64 MiB) are ample.
    let (socket, _) = client_async_with_config(request, stream, Some(WebSocketConfig::default()))
        .await
        .map_err(|e| match e {
            // LXD refused the websocket (a bad event type, a wrong secret): its error envelope
            // says why.
            tokio_tungstenite::tungstenite::Error::Http(refusal) => {
                let status = refusal.status().as_u16();
                let body = refusal.body().as_deref().unwrap_or_default();
                match super::response::parse(status, body, None) {
                    Err(refused @ Error::Api { .. }) => refused,
                    _ => connection_error(format!("websocket handshake failed: HTTP {status}")),
                }
            }
            other => connection_error(format!("websocket handshake failed: {other}")),
        })?;
    Ok(socket)
}

/// The TLS server name of `host:port` (the pinning verifier does not use it, rustls needs one).
fn server_name(authority: &str) -> Result<rustls_pki_types::ServerName<'static>> {
    let host = match authority.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => authority,
    };
    rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| Error::InvalidArgument(format!("bad host '{host}': {e}")))
}

/// The websocket path of an operation's file descriptor.
pub fn operation_socket_path(operation: &str, secret: &str) -> String {
    Request::get(format!(
        "/1.0/operations/{}/websocket",
        super::request::segment(operation)
    ))
    .query("secret", secret)
    .server_wide()
    .path_and_query(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_escape_the_secret() {
        assert_eq!(
            operation_socket_path("abc", "s+/="),
            "/1.0/operations/abc/websocket?secret=s%2B%2F%3D"
        );
    }

    #[test]
    fn server_names_accept_ips_and_hosts() {
        assert!(server_name("127.0.0.1:8443").is_ok());
        assert!(server_name("[::1]:8443").is_ok());
        assert!(server_name("lxd.example:8443").is_ok());
    }
}
