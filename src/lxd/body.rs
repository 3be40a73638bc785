//! What the transport carries, in the client's own types: a [`Body`] (bytes or a stream) each
//! way, a [`Response`] with its status and headers, and an [`Upgraded`] connection. Nothing
//! above the transport names the HTTP library under it.

use std::error::Error as StdError;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A failure while a body was being read or written: the connection's or the reader's own.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A request or response body: bytes in memory, or a stream read as the other side takes it.
pub struct Body(Inner);

enum Inner {
    /// Bytes in memory, sent with their length; `None` once taken.
    Bytes(Option<Bytes>),
    /// Anything else: a file, a response being read, a multipart form.
    Boxed(Pin<Box<dyn HttpBody<Data = Bytes, Error = BoxError> + Send>>),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Bytes(b) => write!(f, "Body({} bytes)", b.as_ref().map_or(0, Bytes::len)),
            Inner::Boxed(_) => f.write_str("Body(stream)"),
        }
    }
}

impl Body {
    /// No body.
    pub fn empty() -> Body {
        Body(Inner::Bytes(None))
    }

    /// A body read from `stream` as it is sent (sent chunked: its length is not known).
    pub fn stream<S, E>(stream: S) -> Body
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Body::wrap(Streamed(Box::pin(stream)))
    }

    /// Any body of the HTTP library's (a response being read, a body wrapper).
    pub(crate) fn wrap<B>(body: B) -> Body
    where
        B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        Body(Inner::Boxed(Box::pin(ErrorBoxed(body))))
    }

    /// The next chunk of data; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BoxError> {
        futures_util::StreamExt::next(self).await.transpose()
    }

    /// The whole body, or `None` once it goes past `limit` bytes. Most bodies arrive as one
    /// chunk, which is passed on without a copy.
    pub async fn collect(mut self, limit: u64) -> Result<Option<Bytes>, BoxError> {
        let Some(first) = self.chunk().await? else {
            return Ok(Some(Bytes::new()));
        };
        let Some(second) = self.chunk().await? else {
            return Ok((first.len() as u64 <= limit).then_some(first));
        };
        let mut whole = bytes::BytesMut::from(&first[..]);
        let mut next = Some(second);
        while let Some(part) = next {
            if (whole.len() + part.len()) as u64 > limit {
                return Ok(None);
            }
            whole.extend_from_slice(&part);
            next = self.chunk().await?;
        }
        Ok(Some(whole.freeze()))
    }
}

/// A body is also the stream of its data chunks (trailers, which carry none, are skipped).
impl Stream for Body {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match std::task::ready!(self.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
            }
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body(Inner::Bytes(Some(bytes)))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::from(Bytes::from(bytes))
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Inner::Bytes(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            Inner::Boxed(body) => body.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Bytes(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Inner::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Bytes(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Boxed(body) => body.size_hint(),
        }
    }
}

/// A body whose errors are boxed.
struct ErrorBoxed<B>(B);

impl<B> HttpBody for ErrorBoxed<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().0)
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// A stream of chunks as a body.
struct Streamed<S>(Pin<Box<S>>);

impl<S, E> HttpBody for Streamed<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.get_mut()
            .0
            .as_mut()
            .poll_next(cx)
            .map(|chunk| chunk.map(|r| r.map(Frame::data).map_err(Into::into)))
    }
}

/// A body that ran out of time: the transport reports it as a `Timeout`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyTimedOut(pub &'static str);

/// True when `err`, or an error under it, is a [`BodyTimedOut`].
pub fn timed_out(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        // An I/O error's source skips the error it wraps.
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(wrapped) => Some(wrapped),
            None => e.source(),
        };
    }
    false
}

/// An answer from the server: status, headers, and the body still to be read.
#[derive(Debug)]
pub struct Response {
    inner: http::Response<Body>,
}

impl Response {
    pub(crate) fn from_http(inner: http::Response<Body>) -> Response {
        Response { inner }
    }

    pub(crate) fn into_http(self) -> http::Response<Body> {
        self.inner
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.inner.status().as_u16()
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        self.inner.status().is_success()
    }

    /// A header's value, when it is present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name)?.to_str().ok()
    }

    /// All headers (LXD answers a file's owner and mode in its own).
    pub fn headers(&self) -> &http::HeaderMap {
        self.inner.headers()
    }

    /// The body's length, when the server said it.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.parse().ok()
    }

    /// The body, to read on its own.
    pub fn into_body(self) -> Body {
        self.inner.into_body()
    }
}

/// A connection the server switched to another protocol (a websocket, SFTP): bytes both ways.
pub struct Upgraded(hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>);

impl Upgraded {
    pub(crate) fn new(upgraded: hyper::upgrade::Upgraded) -> Upgraded {
        Upgraded(hyper_util::rt::TokioIo::new(upgraded))
    }
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upgraded")
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_go_once_with_their_length() {
        let mut body = Body::from(Bytes::from_static(b"abc"));
        assert_eq!(HttpBody::size_hint(&body).exact(), Some(3));
        assert_eq!(
            body.chunk().await.expect("chunk").as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(body.chunk().await.expect("end"), None);
        assert!(Body::empty().is_end_stream());
    }

    #[tokio::test]
    async fn collecting_stops_at_the_limit() {
        let chunks = || {
            let parts: Vec<Result<Bytes, std::io::Error>> =
                vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))];
            Body::stream(futures_util::stream::iter(parts))
        };
        let whole = chunks().collect(4).await.expect("read");
        assert_eq!(whole.as_deref(), Some(&b"abcd"[..]));
        assert_eq!(chunks().collect(3).await.expect("read"), None);
        assert_eq!(
            Body::empty().collect(0).await.expect("read").as_deref(),
            Some(&b""[..])
        );
    }

    #[tokio::test]
    async fn streams_keep_their_errors() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"a")),
            Err(std::io::Error::other("cut")),
        ];
        let mut body = Body::stream(futures_util::stream::iter(chunks));
        assert_eq!(
            body.chunk().await.expect("chunk").as_deref(),
            Some(&b"a"[..])
        );
        let err = body.chunk().await.expect_err("cut");
        assert_eq!(err.to_string(), "cut");
    }

    #[test]
    fn timeouts_are_found_under_other_errors() {
        let io = std::io::Error::other(BodyTimedOut("stalled"));
        assert!(timed_out(&io));
        assert!(!timed_out(&std::io::Error::other("cut")));
    }
}
