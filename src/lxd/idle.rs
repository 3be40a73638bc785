//! Idle timeouts for transfers. An ordinary request has a deadline for the whole exchange; a
//! file, image or backup transfer may take as long as it needs while bytes keep moving, and is
//! given up only when none have moved, either way, for the limit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::body::{Body, BodyTimedOut, BoxError};

/// When bytes last moved in either direction of one transfer.
#[derive(Clone, Debug)]
pub struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last sign of progress.
    last_ms: Arc<AtomicU64>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

impl Activity {
    /// A transfer starting now.
    pub fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: Arc::default(),
        }
    }

    /// Bytes moved just now.
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the transfer is idle for `limit` unless bytes move before.
    fn idle_at(&self, limit: Duration) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + limit
    }

    /// Runs `exchange` until it ends or no bytes moved for `limit`; `None` means the latter.
    pub async fn bound<T>(&self, limit: Duration, exchange: impl Future<Output = T>) -> Option<T> {
        let mut exchange = std::pin::pin!(exchange);
        loop {
            let idle_at = self.idle_at(limit);
            match tokio::time::timeout_at(idle_at, exchange.as_mut()).await {
                Ok(done) => return Some(done),
                // Bytes moved while the timer ran: wait from the last of them.
                Err(_) if self.idle_at(limit) > idle_at => continue,
                Err(_) => return None,
            }
        }
    }

    /// An upload body that counts as progress whenever a frame of it is sent.
    pub fn upload(&self, body: Body) -> Body {
        Body::wrap(Touching {
            inner: body,
            activity: self.clone(),
        })
    }
}

/// An upload body whose frames touch the transfer's activity.
struct Touching {
    inner: Body,
    activity: Activity,
}

impl HttpBody for Touching {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &frame {
            self.activity.touch();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A download body that fails with `TimedOut` once no frame has come for the limit.
pub struct IdleLimited {
    inner: Body,
    limit: Duration,
    expiry: Pin<Box<Sleep>>,
}

impl IdleLimited {
    /// `body`, failing after `limit` without a frame.
    pub fn wrap(body: Body, limit: Duration) -> Body {
        Body::wrap(IdleLimited {
            inner: body,
            limit,
            expiry: Box::pin(tokio::time::sleep(limit)),
        })
    }
}

impl HttpBody for IdleLimited {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = Instant::now() + this.limit;
                this.expiry.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending if this.expiry.as_mut().poll(cx).is_ready() => Poll::Ready(Some(Err(
                Box::new(BodyTimedOut("no data moved for the timeout")),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_exchange_with_progress_outlives_the_limit() {
        let activity = Activity::new();
        let ticking = activity.clone();
        let exchange = async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                ticking.touch();
            }
            "done"
        };
        assert_eq!(
            activity.bound(Duration::from_secs(1), exchange).await,
            Some("done")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_exchange_without_progress_is_given_up() {
        let activity = Activity::new();
        let stalled = tokio::time::sleep(Duration::from_secs(3600));
        let started = Instant::now();
        assert_eq!(activity.bound(Duration::from_secs(2), stalled).await, None);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_download_fails_after_the_limit_from_its_last_frame() {
        let (sender, rx) = channel_body();
        let body = IdleLimited::wrap(rx, Duration::from_secs(2));
        let reader = tokio::spawn(async move {
            let mut body = body;
            while body.chunk().await?.is_some() {}
            Ok::<_, BoxError>(())
        });
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            sender
                .send(Ok(Bytes::from_static(b"x")))
                .await
                .expect("send");
        }
        let failed = reader.await.expect("join").expect_err("stalled");
        assert!(crate::lxd::body::timed_out(&*failed), "{failed:?}");
    }

    /// A body fed from a channel.
    fn channel_body() -> (
        tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
        Body,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut rx = rx;
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        (tx, Body::stream(stream))
    }
}
