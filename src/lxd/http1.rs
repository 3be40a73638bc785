//! HTTP/1.1 to one server, over its unix socket or TLS over TCP, on kept-alive connections that
//! are opened only to carry a request at once, and driven by the task that waits for the answer.
//!
//! LXD 5.0.2 stops serving its unix socket, for every client, while a connection to it sits open
//! without having sent a request (measured: for as long as that connection stays open; a
//! connection that has carried a request and sits idle is harmless). A general-purpose pool
//! makes exactly such connections: when a request finds no idle connection it starts one, and
//! if another connection comes back first the new one is parked unused. Here a connection is
//! only opened by the request that will use it, and only connections that have carried a
//! request go back to the pool.
//!
//! A connection has no task of its own while it carries a request and a short answer: the
//! request's future and then its response body drive it, so a request is written and its answer
//! read on the calling thread, with no hand-over to a worker in between. A long body (a file, an
//! image) and an upgraded connection get a task: reading the socket then overlaps with what the
//! reader does with each chunk.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{Instant, Sleep};
use tokio_rustls::client::TlsStream;

use super::body::{Body, BodyTimedOut, BoxError};

/// How many idle connections are kept for reuse; more are closed when their response ends.
const MAX_IDLE: usize = 8;

/// How long a connection may sit idle in the pool: a server may drop an idle connection
/// without a word (a restart, a NAT on the way), and a request sent on it would then wait for
/// the timeout.
const POOL_IDLE: Duration = Duration::from_secs(10);

/// A response body longer than this (a file, an image) gets a task to drive its connection.
const LONG_BODY_BYTES: u64 = 1 << 20;

/// How connections to the server are made.
#[derive(Clone)]
pub enum Dialer {
    /// The daemon's unix socket.
    Unix(PathBuf),
    /// TLS over TCP to `authority` (`host:port`), with the client's pinned configuration.
    Tls {
        /// `host:port`.
        authority: String,
        /// The name TLS is given (the pinning verifier does not check it; rustls needs one).
        server_name: rustls_pki_types::ServerName<'static>,
        /// TLS 1.3 with the server certificate pinned.
        config: Arc<rustls::ClientConfig>,
    },
    /// An in-process fake server ([`super::fake`]): each call gives a new connection to it.
    #[cfg(test)]
    Memory(Arc<dyn Fn() -> tokio::io::DuplexStream + Send + Sync>),
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dialer::Unix(path) => write!(f, "Unix({})", path.display()),
            Dialer::Tls { authority, .. } => write!(f, "Tls({authority})"),
            #[cfg(test)]
            Dialer::Memory(_) => f.write_str("Memory"),
        }
    }
}

impl Dialer {
    /// The `Host` header requests carry.
    pub fn host(&self) -> &str {
        match self {
            Dialer::Unix(_) => "lxd",
            Dialer::Tls { authority, .. } => authority,
            #[cfg(test)]
            Dialer::Memory(_) => "lxd",
        }
    }

    /// Opens a connection: a socket, or a TCP connection and its TLS handshake.
    async fn dial(&self) -> Result<Stream, Failure> {
        match self {
            Dialer::Unix(path) => UnixStream::connect(path)
                .await
                .map(Stream::Unix)
                .map_err(|e| Failure::Broken(Box::new(e))),
            Dialer::Tls {
                authority,
                server_name,
                config,
            } => {
                let tcp = TcpStream::connect(authority.as_str())
                    .await
                    .map_err(|e| Failure::Broken(Box::new(e)))?;
                // Requests are small writes answered at once: no Nagle delay.
                let _ = tcp.set_nodelay(true);
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = connector
                    .connect(server_name.clone(), tcp)
                    .await
                    .map_err(|e| match e.downcast::<rustls::Error>() {
                        Ok(refused) => Failure::Tls(refused),
                        Err(e) => Failure::Broken(Box::new(e)),
                    })?;
                Ok(Stream::Tls(Box::new(tls)))
            }
            #[cfg(test)]
            Dialer::Memory(accept) => Ok(Stream::Memory(accept())),
        }
    }
}

/// One connection's bytes: a unix socket or TLS over TCP.
#[derive(Debug)]
pub enum Stream {
    /// The daemon's unix socket.
    Unix(UnixStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
    /// A pipe to an in-process fake server.
    #[cfg(test)]
    Memory(tokio::io::DuplexStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(test)]
            Stream::Memory(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(test)]
            Stream::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            #[cfg(test)]
            Stream::Memory(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Unix(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
            #[cfg(test)]
            Stream::Memory(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(test)]
            Stream::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(test)]
            Stream::Memory(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// One connection: the handle requests are sent through, and the connection itself, which
/// whoever waits on it polls.
struct Connection {
    sender: SendRequest<Body>,
    io: http1::Connection<TokioIo<Stream>, Body>,
}

/// Connections that have carried a request and are free for the next one.
type IdleConnections = Arc<Mutex<Vec<(Connection, Instant)>>>;

/// An HTTP/1.1 client for one server.
pub struct Http1 {
    dialer: Dialer,
    connect_timeout: Duration,
    idle: IdleConnections,
    /// How long an idle connection is kept ([`POOL_IDLE`]).
    pool_idle: Duration,
}

impl std::fmt::Debug for Http1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1")
            .field("dialer", &self.dialer)
            .finish()
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum Failure {
    /// Connecting took longer than the connect timeout.
    ConnectTimedOut,
    /// The timeout ran out before the response (head or body) was complete.
    TimedOut,
    /// The TLS handshake failed: the server's certificate, or what the server refused.
    Tls(rustls::Error),
    /// The server could not be reached, or the connection broke.
    Broken(BoxError),
}

impl From<hyper::Error> for Failure {
    fn from(e: hyper::Error) -> Self {
        Failure::Broken(Box::new(e))
    }
}

impl Http1 {
    /// A client that connects with `dialer`, whose connects give up after `connect_timeout`
    /// (a daemon that has stopped accepting leaves them hanging); nothing is connected yet.
    pub fn new(dialer: Dialer, connect_timeout: Duration) -> Http1 {
        Http1 {
            dialer,
            connect_timeout,
            idle: Arc::default(),
            pool_idle: POOL_IDLE,
        }
    }

    /// The `Host` header its requests carry.
    pub fn host(&self) -> &str {
        self.dialer.host()
    }

    /// Sends `request` (origin-form URI, `Host` set) and returns the response once its head has
    /// arrived; reading its body drives the connection on. `timeout`, if any, covers the whole
    /// exchange, body included.
    pub async fn send(
        &self,
        request: http::Request<Body>,
        timeout: Option<Duration>,
    ) -> Result<http::Response<Body>, Failure> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let exchange = self.exchange(request, deadline);
        match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, exchange)
                .await
                .map_err(|_| Failure::TimedOut)?,
            None => exchange.await,
        }
    }

    /// Sends on an idle connection if one is still open, else on a new one.
    async fn exchange(
        &self,
        mut request: http::Request<Body>,
        deadline: Option<Instant>,
    ) -> Result<http::Response<Body>, Failure> {
        if request.headers().contains_key(http::header::UPGRADE) {
            return self.upgrade(request).await;
        }
        while let Some(connection) = self.take_idle() {
            match self.round_trip(connection, request, deadline).await {
                Ok(response) => return Ok(response),
                // The server closed this connection before the request went out: hyper hands
                // the request back, unsent, and the next connection carries it.
                Err(Unsent::Back(unsent)) => request = *unsent,
                Err(Unsent::Failed(failure)) => return Err(failure),
            }
        }
        let connection = self.connect().await?;
        match self.round_trip(connection, request, deadline).await {
            Ok(response) => Ok(response),
            Err(Unsent::Back(_)) => Err(Failure::Broken(
                "the new connection closed before the request was sent".into(),
            )),
            Err(Unsent::Failed(failure)) => Err(failure),
        }
    }

    /// Sends one request on `connection`, polling the connection until the response's head is
    /// in; the body then carries the connection and gives it back to the pool at its end.
    async fn round_trip(
        &self,
        mut connection: Connection,
        request: http::Request<Body>,
        deadline: Option<Instant>,
    ) -> Result<http::Response<Body>, Unsent> {
        let mut answer = std::pin::pin!(connection.sender.try_send_request(request));
        let mut io_done = false;
        let head = std::future::poll_fn(|cx| {
            if !io_done {
                // Ready means the connection is finished (closed or failed); the answer then
                // holds the reason, so only the answer is polled from here on.
                io_done = connection.io.poll_without_shutdown(cx).is_ready();
            }
            match answer.as_mut().poll(cx) {
                Poll::Ready(Ok(head)) => Poll::Ready(Ok(head)),
                Poll::Ready(Err(mut failed)) => Poll::Ready(Err(match failed.take_message() {
                    Some(unsent) => Unsent::Back(Box::new(unsent)),
                    None => Unsent::Failed(failed.into_error().into()),
                })),
                Poll::Pending if io_done => Poll::Ready(Err(Unsent::Failed(Failure::Broken(
                    "the connection closed without an answer".into(),
                )))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        let (head, body) = head.into_parts();
        let long_body = head
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|length| length > LONG_BODY_BYTES);
        let connection = match io_done {
            true => None,
            false if long_body => {
                drive_on_task(connection, self.idle.clone());
                None
            }
            false => Some(connection),
        };
        let body = DrivenBody {
            body,
            connection,
            pool: self.idle.clone(),
            expiry: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
        };
        Ok(http::Response::from_parts(head, Body::wrap(body)))
    }

    /// Sends a request that asks to switch protocols on a connection of its own, driven by a
    /// task: the upgraded stream outlives the response.
    async fn upgrade(&self, request: http::Request<Body>) -> Result<http::Response<Body>, Failure> {
        let Connection { mut sender, io } = self.connect().await?;
        tokio::spawn(async move {
            // Its errors reach the request through the sender.
            let _ = io.with_upgrades().await;
        });
        let (head, body) = sender.send_request(request).await?.into_parts();
        Ok(http::Response::from_parts(head, Body::wrap(body)))
    }

    /// An idle connection that is still open, if any.
    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((mut connection, since)) = idle.pop() {
            if since.elapsed() > self.pool_idle {
                continue;
            }
            // Polled once: an idle connection only finishes when the server has closed it; the
            // poll also lets it take the next request.
            let mut cx = Context::from_waker(Waker::noop());
            if connection.io.poll_without_shutdown(&mut cx).is_pending()
                && connection.sender.is_ready()
            {
                return Some(connection);
            }
        }
        None
    }

    /// Opens a connection for a request that is about to be sent on it.
    async fn connect(&self) -> Result<Connection, Failure> {
        let stream = tokio::time::timeout(self.connect_timeout, self.dialer.dial())
            .await
            .map_err(|_| Failure::ConnectTimedOut)??;
        let (sender, io) = http1::handshake(TokioIo::new(stream)).await?;
        Ok(Connection { sender, io })
    }
}

/// Puts a connection whose exchange is complete back in the pool, or closes it if the pool is
/// full.
fn give_back(pool: &IdleConnections, connection: Connection) {
    let mut idle = pool.lock().unwrap_or_else(PoisonError::into_inner);
    if idle.len() < MAX_IDLE {
        idle.push((connection, Instant::now()));
    }
}

/// Drives a connection whose response body is long on a task of its own, so that reading the
/// socket overlaps with whatever the body's reader does with each chunk (see
/// `scripts/bench/NOTES.md`). Once the body has been read to the end the connection is ready
/// for a request again and goes back to the pool; a body dropped half-way closes it.
fn drive_on_task(mut connection: Connection, pool: IdleConnections) {
    tokio::spawn(async move {
        let reusable = std::future::poll_fn(|cx| {
            if connection.io.poll_without_shutdown(cx).is_ready() {
                return Poll::Ready(false);
            }
            connection.sender.poll_ready(cx).map(|ready| ready.is_ok())
        })
        .await;
        if reusable {
            give_back(&pool, connection);
        }
    });
}

/// A request that did not get an answer.
enum Unsent {
    /// It never left: it can go on another connection.
    Back(Box<http::Request<Body>>),
    /// It failed on the way.
    Failed(Failure),
}

/// A response body that drives its connection while it is read, gives the connection back to
/// the pool when it ends, and fails with [`BodyTimedOut`] once the request's deadline has
/// passed.
struct DrivenBody {
    body: Incoming,
    /// `None` once the connection has finished (the server closed it).
    connection: Option<Connection>,
    pool: IdleConnections,
    expiry: Option<Pin<Box<Sleep>>>,
}

impl HttpBody for DrivenBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(expiry) = &mut this.expiry
            && expiry.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(
                "the response was not complete before the timeout",
            )))));
        }
        if let Some(connection) = &mut this.connection
            && connection.io.poll_without_shutdown(cx).is_ready()
        {
            this.connection = None;
        }
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = frame
            && let Some(connection) = this.connection.take()
        {
            give_back(&this.pool, connection);
        }
        frame.map_err(|e| Box::new(e) as Self::Error)
    }

    fn is_end_stream(&self) -> bool {
        // Until the end has been polled, the connection is not back in the pool.
        self.connection.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    /// What a fake server saw: connections opened, and those closed without a request.
    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        silent: AtomicUsize,
    }

    /// How the fake server answers each request.
    #[derive(Clone, Copy)]
    enum Answer {
        /// `ok`, and the connection stays open.
        KeepAlive,
        /// `ok`, then the server closes the connection without saying so.
        ThenClose,
        /// A head promising ten bytes, two of them, then nothing.
        Stall,
        /// Two mebibytes, and the connection stays open.
        Long,
    }

    /// The size of [`Answer::Long`]'s body: long enough to be driven by a task.
    const LONG: usize = 2 << 20;

    fn request(path: &str) -> http::Request<Body> {
        http::Request::builder()
            .uri(path)
            .header(http::header::HOST, "lxd")
            .body(Body::empty())
            .expect("request")
    }

    /// A response's whole body.
    async fn read_all(response: http::Response<Body>) -> Result<Vec<u8>, BoxError> {
        let whole = response.into_body().collect(u64::MAX).await?;
        Ok(whole.unwrap_or_default().to_vec())
    }

    /// A fake HTTP/1.1 server on a unix socket of the test's own.
    fn serve(answer: Answer) -> (tempfile::TempDir, PathBuf, Arc<Seen>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let seen = Arc::new(Seen::default());
        let counts = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counts.connections.fetch_add(1, Ordering::SeqCst);
                let counts = counts.clone();
                tokio::spawn(async move {
                    let mut requests = 0;
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut chunk).await {
                        if n == 0 {
                            break;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            buffer.drain(..end + 4);
                            requests += 1;
                            let reply: Vec<u8> = match answer {
                                Answer::Stall => {
                                    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok".to_vec()
                                }
                                Answer::Long => {
                                    let mut reply = format!(
                                        "HTTP/1.1 200 OK\r\nContent-Length: {LONG}\r\n\r\n"
                                    )
                                    .into_bytes();
                                    reply.resize(reply.len() + LONG, b'x');
                                    reply
                                }
                                _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
                            };
                            if stream.write_all(&reply).await.is_err() {
                                break;
                            }
                        }
                        if requests > 0 && matches!(answer, Answer::ThenClose) {
                            break;
                        }
                    }
                    if requests == 0 {
                        counts.silent.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        (dir, path, seen)
    }

    fn client_for(path: PathBuf) -> Http1 {
        Http1::new(Dialer::Unix(path), Duration::from_secs(10))
    }

    async fn get_ok(client: &Http1) {
        let response = client.send(request("/1.0"), None).await.expect("answer");
        assert_eq!(read_all(response).await.expect("body"), b"ok");
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (_dir, path, seen) = serve(Answer::KeepAlive);
        let client = client_for(path);
        for _ in 0..20 {
            get_ok(&client).await;
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_never_leave_a_silent_connection() {
        let (_dir, path, seen) = serve(Answer::KeepAlive);
        let client = Arc::new(client_for(path));
        for _ in 0..5 {
            let burst: Vec<_> = (0..30)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move { get_ok(&client).await })
                })
                .collect();
            for request in burst {
                request.await.expect("request task");
            }
        }
        drop(client);
        // The server counts a connection when it closes: give the closes a moment to land.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(seen.connections.load(Ordering::SeqCst) >= 1);
        assert_eq!(seen.silent.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_connection_idle_too_long_is_not_reused() {
        let (_dir, path, seen) = serve(Answer::KeepAlive);
        let client = Http1 {
            pool_idle: Duration::from_millis(50),
            ..client_for(path)
        };
        get_ok(&client).await;
        get_ok(&client).await;
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        get_ok(&client).await;
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced() {
        let (_dir, path, seen) = serve(Answer::ThenClose);
        let client = client_for(path);
        for _ in 0..3 {
            get_ok(&client).await;
            // Let the server's close arrive before the next request.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_that_carried_a_long_body_is_reused() {
        let (_dir, path, seen) = serve(Answer::Long);
        let client = client_for(path);
        for _ in 0..3 {
            let response = client.send(request("/file"), None).await.expect("answer");
            assert_eq!(read_all(response).await.expect("body").len(), LONG);
            // The connection's task gives it back once it is ready for the next request.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_timeout_covers_a_stalled_body() {
        let (_dir, path, _seen) = serve(Answer::Stall);
        let client = client_for(path);
        let response = client
            .send(request("/1.0"), Some(Duration::from_millis(300)))
            .await
            .expect("the head arrives");
        let failed = read_all(response).await.expect_err("the body stalls");
        assert!(crate::lxd::body::timed_out(&*failed), "{failed:?}");
    }
}
