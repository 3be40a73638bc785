//! The event stream: `GET /1.0/events` as a websocket, read by a task of its own (so LXD's pings
//! are always answered) into a bounded queue that drops its oldest events, counting them,
//! instead of growing without bound.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::client::Client;
use super::error::Result;
use super::request::Request;
use super::websocket::{self, Writes};

/// Which events to receive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// `lifecycle`, `operation`, `logging` (all when empty).
    pub types: Vec<String>,
    /// Events of every project, not only the client's.
    pub all_projects: bool,
    /// How many events may wait before the oldest are dropped (0: [`QUEUE`]).
    pub queue: usize,
}

/// The request that opens the stream.
pub fn request(filter: &EventFilter) -> Request {
    let mut r = Request::get("/1.0/events");
    if !filter.types.is_empty() {
        r = r.query("type", filter.types.join(","));
    }
    if filter.all_projects {
        r = r.query("all-projects", "true");
    }
    r
}

/// How many events wait for the reader at most before the oldest are dropped.
pub const QUEUE: usize = 1024;

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<VecDeque<Value>>,
    arrived: Notify,
    dropped: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
}

/// An open event stream.
#[derive(Debug)]
pub struct EventStream {
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
}

impl EventStream {
    /// Opens the stream.
    pub async fn open(client: &Client, filter: &EventFilter) -> Result<EventStream> {
        let project = Some(client.project()).filter(|p| *p != "default");
        let mut socket =
            websocket::connect(client.transport(), request(filter), project, Writes::Report)
                .await?;
        let shared = Arc::new(Shared::default());
        let capacity = if filter.queue == 0 {
            QUEUE
        } else {
            filter.queue
        };
        let writer = shared.clone();
        let reader = tokio::spawn(async move {
            while let Some(message) = socket.next().await {
                let text = match message {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => continue, // pings are answered by the stream itself
                };
                let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if let Ok(mut queue) = writer.queue.lock() {
                    if queue.len() >= capacity {
                        queue.pop_front();
                        writer.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    queue.push_back(event);
                }
                writer.arrived.notify_one();
            }
            writer.closed.store(true, Ordering::SeqCst);
            writer.arrived.notify_one();
        });
        Ok(EventStream { shared, reader })
    }

    /// The next event; `None` after `timeout` (or when the stream has ended).
    pub async fn next(&self, timeout: Option<Duration>) -> Option<Value> {
        let wait = async {
            loop {
                let notified = self.shared.arrived.notified();
                if let Some(event) = self
                    .shared
                    .queue
                    .lock()
                    .ok()
                    .and_then(|mut q| q.pop_front())
                {
                    return Some(event);
                }
                if self.shared.closed.load(Ordering::SeqCst) {
                    return None;
                }
                notified.await;
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, wait).await.ok().flatten(),
            None => wait.await,
        }
    }

    /// How many events wait to be read now (never more than the queue bound).
    pub fn pending(&self) -> usize {
        self.shared
            .queue
            .lock()
            .map(|q| q.len())
            .unwrap_or_default()
    }

    /// How many events were dropped because the reader was slow.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// True once the server ended the stream (or `close` was called).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Ends the stream: no event is received or handed out after this.
    pub fn close(&self) {
        self.reader.abort();
        if let Ok(mut queue) = self.shared.queue.lock() {
            queue.clear();
        }
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.arrived.notify_one();
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_query() {
        let f = EventFilter {
            types: vec!["lifecycle".into(), "operation".into()],
            all_projects: true,
            queue: 0,
        };
        assert_eq!(
            request(&f).path_and_query(None),
            "/1.0/events?type=lifecycle,operation&all-projects=true"
        );
        assert_eq!(
            request(&EventFilter::default()).path_and_query(Some("p")),
            "/1.0/events?project=p"
        );
    }
}
