//! An LXD inside the test process: the transport dials it through an in-memory pipe (no socket,
//! no daemon, no root), and it answers each request as the test's handler says, websockets
//! included. Unit tests of the paths a real daemon shows only rarely (a long poll that runs
//! out, a failed operation, a recorded exec, a refused websocket) run on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::body::Body;
use super::client::Client;
use super::transport::{Transport, TransportOptions};

/// A request as the fake saw it.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The body, whole.
    pub body: Bytes,
}

impl FakeRequest {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// The websocket a fake answer serves.
pub type FakeSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// What the fake does with the websocket of an upgraded request.
pub type SocketTask =
    Box<dyn FnOnce(FakeSocket) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// How the fake answers one request.
pub enum FakeAnswer {
    /// A status and a JSON body.
    Json(u16, Value),
    /// A status and raw bytes (a file, a log).
    Bytes(u16, Bytes),
    /// Switch to a websocket and hand it to the task.
    Websocket(SocketTask),
}

impl FakeAnswer {
    /// A `sync` envelope around `metadata`.
    pub fn sync(metadata: Value) -> FakeAnswer {
        FakeAnswer::Json(
            200,
            json!({"type": "sync", "status": "Success", "status_code": 200, "metadata": metadata}),
        )
    }

    /// An `async` envelope: the operation `op` started.
    pub fn started(op: Value) -> FakeAnswer {
        let url = format!("/1.0/operations/{}", op["id"].as_str().unwrap_or_default());
        FakeAnswer::Json(
            202,
            json!({"type": "async", "status": "Operation created", "status_code": 100,
                   "operation": url, "metadata": op}),
        )
    }

    /// An `error` envelope.
    pub fn error(status: u16, message: &str) -> FakeAnswer {
        FakeAnswer::Json(
            status,
            json!({"type": "error", "error": message, "error_code": status, "metadata": null}),
        )
    }

    /// A websocket served by `task`.
    pub fn websocket<F, Fut>(task: F) -> FakeAnswer
    where
        F: FnOnce(FakeSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        FakeAnswer::Websocket(Box::new(move |socket| Box::pin(task(socket))))
    }
}

/// An operation object: `status_code` 103 is Running, 200 Success, 400 Failure.
pub fn operation(id: &str, status_code: u16, metadata: Value, err: &str) -> Value {
    let status = match status_code {
        200 => "Success",
        400 => "Failure",
        401 => "Cancelled",
        _ => "Running",
    };
    json!({"id": id, "class": "task", "status": status, "status_code": status_code,
           "metadata": metadata, "err": err, "may_cancel": false})
}

/// The handler a test gives: every request's answer.
type Handler = dyn Fn(&FakeRequest) -> FakeAnswer + Send + Sync;

/// The fake server: its handler, and the requests it has seen (`METHOD path`).
#[derive(Clone)]
pub struct FakeLxd {
    handler: Arc<Handler>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeLxd {
    /// A fake answering with `handler`.
    pub fn new(handler: impl Fn(&FakeRequest) -> FakeAnswer + Send + Sync + 'static) -> FakeLxd {
        FakeLxd {
            handler: Arc::new(handler),
            seen: Arc::default(),
        }
    }

    /// A client of this fake, with the transport's options.
    pub fn client(&self, options: TransportOptions) -> Client {
        let fake = self.clone();
        let dial = Arc::new(move || fake.accept());
        Client::from_transport(Transport::in_memory(dial, options))
    }

    /// The requests seen so far, as `METHOD path`.
    pub fn seen(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A new connection: the client's end of a pipe whose other end this fake serves.
    fn accept(&self) -> tokio::io::DuplexStream {
        let (client_end, server_end) = tokio::io::duplex(256 * 1024);
        let fake = self.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let fake = fake.clone();
                async move { Ok::<_, std::convert::Infallible>(fake.answer(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server_end), service)
                .with_upgrades()
                .await;
        });
        client_end
    }

    async fn answer(&self, mut req: http::Request<Incoming>) -> http::Response<Body> {
        let upgrade = hyper::upgrade::on(&mut req);
        let key = req
            .headers()
            .get("sec-websocket-key")
            .and_then(|k| k.to_str().ok())
            .map(str::to_owned);
        let (parts, incoming) = req.into_parts();
        let whole = Body::wrap(incoming)
            .collect(u64::MAX)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let request = FakeRequest {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            body: whole,
        };
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(format!("{} {}", request.method, request.path));
        let reply = |status: u16, body: Body| {
            let mut response = http::Response::new(body);
            *response.status_mut() =
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
            response
        };
        match (self.handler)(&request) {
            FakeAnswer::Json(status, value) => {
                reply(status, Body::from(value.to_string().into_bytes()))
            }
            FakeAnswer::Bytes(status, bytes) => reply(status, Body::from(bytes)),
            FakeAnswer::Websocket(task) => {
                tokio::spawn(async move {
                    if let Ok(upgraded) = upgrade.await {
                        let socket = WebSocketStream::from_raw_socket(
                            TokioIo::new(upgraded),
                            Role::Server,
                            None,
                        )
                        .await;
                        task(socket).await;
                    }
                });
                let mut response = reply(101, Body::empty());
                let headers = response.headers_mut();
                headers.insert("upgrade", http::HeaderValue::from_static("websocket"));
                headers.insert("connection", http::HeaderValue::from_static("Upgrade"));
                if let Ok(accept) = derive_accept_key(key.unwrap_or_default().as_bytes()).parse() {
                    headers.insert("sec-websocket-accept", accept);
                }
                response
            }
        }
    }
}
