//! The LXD client handle: a shared transport plus the project every call carries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::body::{Body, Response, Upgraded};
use super::config::Target;
use super::error::{Error, ErrorKind, Result};
use super::object;
use super::request::{Request, segment};
use super::response::{Answer, Loaded, Operation};
use super::transport::{Endpoint, Transport, TransportOptions};

/// A cheap-to-clone handle on one LXD server and project. Clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    transport: Arc<Transport>,
    project: Option<String>,
    remote: Option<Arc<str>>,
}

/// Which daemon answered and its version, from `GET /1.0`: `environment.server` is `lxd` or
/// `incus`, `environment.server_version` its release. Scripts see it as `client.server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    /// `lxd` or `incus` (as the server names itself).
    pub name: String,
    /// The server's release, e.g. `5.0.2` or `6.0.4`.
    pub version: String,
}

impl ServerIdentity {
    /// Reads the identity from a `GET /1.0` answer (empty strings for what it does not say).
    pub fn of(host_info: &Value) -> ServerIdentity {
        let field = |key: &str| {
            host_info
                .pointer(&format!("/environment/{key}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        ServerIdentity {
            name: field("server"),
            version: field("server_version"),
        }
    }
}

impl std::fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

/// Where another server pulls from the server described by `host_info` (its `GET /1.0`), as
/// image copies and migrations do: `https://` its first address, and the certificate to pin.
pub fn pull_address(host_info: &Value) -> Result<(String, String)> {
    let address = host_info
        .pointer("/environment/addresses")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::InvalidArgument(
                "the source server has no HTTPS address for the other server to pull from: set its core.https_address".into(),
            )
        })?;
    let certificate = host_info
        .pointer("/environment/certificate")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok((format!("https://{address}"), certificate.to_owned()))
}

/// Receives an operation's progress text while it is waited for.
pub type OperationProgress = Arc<dyn Fn(&str) + Send + Sync>;

/// How long one `/wait` long poll asks the server to block.
const WAIT_CHUNK: Duration = Duration::from_secs(30);
/// Slack on top of a long poll before the HTTP request itself times out.
const WAIT_SLACK: Duration = Duration::from_secs(15);

impl Client {
    /// Connects to a resolved target (no request is sent yet).
    pub fn connect(target: &Target, options: TransportOptions) -> Result<Client> {
        let transport = match (&target.endpoint, &target.tls) {
            (Endpoint::Unix(path), _) => Transport::unix(path.clone(), options)?,
            (Endpoint::Https(url), Some(tls)) => Transport::https(url, tls, options)?,
            (Endpoint::Https(url), None) => {
                return Err(Error::Tls(format!("no TLS settings for {url}")));
            }
        };
        Ok(Client {
            transport: Arc::new(transport),
            project: target.project.clone(),
            remote: target.remote.as_deref().map(Arc::from),
        })
    }

    /// A client over `transport`, in the default project (tests give it a fake server's).
    #[cfg(test)]
    pub fn from_transport(transport: Transport) -> Client {
        Client {
            transport: Arc::new(transport),
            project: None,
            remote: None,
        }
    }

    /// The same server on another project, sharing the connection pool.
    pub fn with_project(&self, project: &str) -> Client {
        Client {
            transport: self.transport.clone(),
            project: (project != "default").then(|| project.to_owned()),
            remote: self.remote.clone(),
        }
    }

    /// The name of the `lxc`/`incus` remote this client was reached through, if it was one.
    pub fn remote(&self) -> Option<&str> {
        self.remote.as_deref()
    }

    /// What a lookup did not find, and where it looked: `Instance 'web' not found in project
    /// 'default' of remote 'second'` (LXD's own text, "Instance not found", says neither).
    pub fn missing(&self, what: &str, name: &str) -> String {
        format!("{what} '{name}' not found in {}", self.place())
    }

    /// Where this client's calls go: `project 'default' of remote 'second'` (or of the
    /// endpoint, when it was not reached through a remote).
    pub fn place(&self) -> String {
        match &self.remote {
            Some(remote) => format!("project '{}' of remote '{remote}'", self.project()),
            None => format!("project '{}' of {}", self.project(), self.endpoint()),
        }
    }

    /// The project calls are made in.
    pub fn project(&self) -> &str {
        self.project.as_deref().unwrap_or("default")
    }

    /// The server's endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        self.transport.endpoint()
    }

    /// The transport, for streaming calls.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Sends a request in this client's project and decodes the envelope.
    pub async fn call(&self, req: &Request) -> Result<Answer> {
        self.transport.call(req, self.project.as_deref()).await
    }

    /// Sends a request in this client's project and returns the raw response when it
    /// succeeded (file bodies, streams); a failure is decoded from LXD's error envelope.
    pub async fn send(&self, req: &Request, body: Option<Body>) -> Result<Response> {
        let resp = self
            .transport
            .send_transfer(req, self.project.as_deref(), body)
            .await?;
        self.transport.success(resp, req).await
    }

    /// Sends a request carrying `Upgrade` headers in this client's project and returns the
    /// connection once LXD switched protocols (101); any other answer is decoded as an error.
    pub async fn upgrade(&self, req: &Request) -> Result<Upgraded> {
        let (_, upgraded) = self.transport.upgrade(req, self.project.as_deref()).await?;
        Ok(upgraded)
    }

    /// Sends a request with a raw body (a file, an image) and decodes LXD's envelope.
    pub async fn call_with_body(&self, req: &Request, body: Body) -> Result<Answer> {
        let resp = self
            .transport
            .send_transfer(req, self.project.as_deref(), Some(body))
            .await?;
        self.transport.decode(resp, req).await
    }

    /// `GET path`, returning the sync metadata.
    pub async fn get(&self, path: &str) -> Result<Value> {
        Ok(self.call(&Request::get(path)).await?.into_metadata())
    }

    /// `GET /1.0` in this client's project: the server's description (`auth`,
    /// `api_extensions`, `environment` with its `project`, ...).
    pub async fn server(&self) -> Result<Value> {
        Ok(self.call(&Request::get("/1.0")).await?.into_metadata())
    }

    /// `GET /1.0` of a client just made, its project checked at the same time
    /// ([`Client::check_project`]).
    pub async fn server_in_checked_project(&self) -> Result<Value> {
        let (host_info, project) = tokio::join!(self.server(), self.check_project());
        project.and(host_info)
    }

    /// Fails with `NotFound`, naming the projects there are, when this client's project does
    /// not exist: LXD answers calls in a missing project with empty lists, not an error.
    pub async fn check_project(&self) -> Result<()> {
        let Some(project) = &self.project else {
            return Ok(());
        };
        let default = self.with_project("default");
        let path = format!("{}/{}", object::PROJECTS, segment(project));
        match default.get(&path).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let existing = match default.get(object::PROJECTS).await {
                    Ok(urls) => object::keys_of(&urls).join(", "),
                    Err(_) => "(the list is not readable with this certificate)".to_owned(),
                };
                Err(Error::Api {
                    status: 404,
                    message: format!(
                        "project '{project}' does not exist on {}; it has: {existing}",
                        self.endpoint()
                    ),
                    operation: None,
                })
            }
            checked => checked.map(|_| ()),
        }
    }

    /// GETs one object, with the ETag that protects a later save.
    pub async fn object(&self, req: &Request) -> Result<Loaded> {
        match self.call(req).await? {
            Answer::Sync {
                metadata: Value::Object(fields),
                etag,
            } => Ok(Loaded { fields, etag }),
            other => Err(Error::Decode(format!(
                "{} {}: expected an object, got {}",
                req.method,
                req.path,
                other.into_metadata()
            ))),
        }
    }

    /// GETs a list of whole objects (a `recursion=1` listing).
    pub async fn objects(&self, req: &Request) -> Result<Vec<Map<String, Value>>> {
        match self.call(req).await?.into_metadata() {
            Value::Array(items) => Ok(items
                .into_iter()
                .filter_map(|v| match v {
                    Value::Object(m) => Some(m),
                    _ => None,
                })
                .collect()),
            other => Err(Error::Decode(format!(
                "{} {}: expected a list, got {other}",
                req.method, req.path
            ))),
        }
    }

    /// GETs a list of whole objects (a `recursion=1` listing), each unparsed until read: a big
    /// listing costs one scan of the body (see [`super::response::RawObject`]).
    pub async fn raw_objects(&self, req: &Request) -> Result<Vec<super::response::RawObject>> {
        self.transport.call_list(req, self.project.as_deref()).await
    }

    /// Sends a request that must start an operation, and returns it (not waited).
    pub async fn operation(&self, req: &Request) -> Result<Operation> {
        self.start(req).await?.ok_or_else(|| {
            Error::Decode(format!(
                "{} {} did not start an operation",
                req.method, req.path
            ))
        })
    }

    /// Sends a request that may start an operation; returns the operation, if one was started.
    pub async fn start(&self, req: &Request) -> Result<Option<Operation>> {
        Ok(self.call(req).await?.operation())
    }

    /// Sends a request and, when it starts an operation, waits for it to end.
    pub async fn run(&self, req: &Request) -> Result<Option<Operation>> {
        match self.start(req).await? {
            Some(op) => Ok(Some(self.wait_operation(op.id(), None).await?)),
            None => Ok(None),
        }
    }

    /// Waits for an operation with `/wait?timeout=` long polls, and returns its final state
    /// (taken from the wait answer itself: LXD forgets finished operations after 5 s).
    /// `OperationFailed` when it failed, `Timeout` when `timeout` ran out first.
    pub async fn wait_operation(&self, id: &str, timeout: Option<Duration>) -> Result<Operation> {
        self.wait_operation_reporting(id, timeout, None).await
    }

    /// Waits like [`Client::wait_operation`], passing the operation's progress text (such as
    /// "Unpack: 45% (210MB/s)") to `progress` about once a second: the long polls are then 1 s.
    ///
    /// A wait dropped before the operation ended (Ctrl-C) leaves it to
    /// [`settle_abandoned_waits`], which cancels it where LXD allows.
    pub async fn wait_operation_reporting(
        &self,
        id: &str,
        timeout: Option<Duration>,
        progress: Option<OperationProgress>,
    ) -> Result<Operation> {
        let mut watch = WaitWatch {
            client: self,
            id,
            ended: false,
        };
        let waited = self.wait_until_final(id, timeout, progress).await;
        watch.ended = true;
        waited
    }

    /// The long polls of [`Client::wait_operation_reporting`].
    async fn wait_until_final(
        &self,
        id: &str,
        timeout: Option<Duration>,
        progress: Option<OperationProgress>,
    ) -> Result<Operation> {
        let deadline = timeout.map(|t| Instant::now() + t);
        // A client timeout shorter than the long poll bounds how long the server may stay
        // silent: a hung daemon is then noticed within twice the timeout.
        let client_timeout = self.transport.options().timeout;
        let poll = if progress.is_some() {
            Duration::from_secs(1)
        } else {
            WAIT_CHUNK.min(client_timeout.unwrap_or(WAIT_CHUNK))
        };
        let slack = WAIT_SLACK.min(client_timeout.unwrap_or(WAIT_SLACK));
        loop {
            let chunk = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(poll),
                None => poll,
            };
            // LXD takes whole seconds; 0 would mean "answer at once", which is what we want at the end.
            let secs = chunk.as_secs_f64().ceil() as u64;
            let req = Request::get(format!("/1.0/operations/{}/wait", segment(id)))
                .query("timeout", secs.to_string())
                .timeout(chunk + slack);
            match self.call(&req).await {
                Ok(answer) => {
                    let op = Operation::from_value(answer.into_metadata())?;
                    if op.is_final() {
                        return op.into_result();
                    }
                    if let (Some(report), Some(text)) = (&progress, op.progress()) {
                        report(&text);
                    }
                }
                Err(Error::Api { status: 404, .. }) => {
                    return Err(Error::Api {
                        status: 404,
                        message: format!(
                            "operation {id} is gone: LXD forgets finished operations 5 s after they end, so its result is lost"
                        ),
                        operation: Some(id.to_owned()),
                    });
                }
                // LXD 6.x answers both a long poll that ran out and a failed operation with an
                // error envelope: the operation's own state, read while it lasts, tells which.
                Err(Error::Api {
                    message, status, ..
                }) => match self.get(&format!("/1.0/operations/{}", segment(id))).await {
                    Ok(op) => {
                        let op = Operation::from_value(op)?;
                        if op.is_final() {
                            return op.into_result();
                        }
                    }
                    Err(_) => {
                        return Err(Error::OperationFailed {
                            message,
                            operation: id.to_owned(),
                            status_code: status,
                            metadata: Value::Null,
                        });
                    }
                },
                Err(e) => return Err(e),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout {
                    what: format!("operation {id}"),
                    seconds: timeout.map(|t| t.as_secs_f64()).unwrap_or_default(),
                    operation: Some(id.to_owned()),
                });
            }
        }
    }

    /// Cancels an operation (`DELETE /1.0/operations/<id>`).
    pub async fn cancel_operation(&self, id: &str) -> Result<()> {
        self.call(&Request::delete(format!("/1.0/operations/{}", segment(id))))
            .await
            .map(|_| ())
    }
}

/// Notes an operation whose wait is dropped before it ended (Ctrl-C stops a wait by dropping
/// it), for [`settle_abandoned_waits`].
struct WaitWatch<'a> {
    client: &'a Client,
    id: &'a str,
    ended: bool,
}

impl Drop for WaitWatch<'_> {
    fn drop(&mut self) {
        if !self.ended {
            abandoned_waits().push((self.client.clone(), self.id.to_owned()));
        }
    }
}

/// The operations whose waits were abandoned, and the clients they were started through.
static ABANDONED_WAITS: std::sync::Mutex<Vec<(Client, String)>> = std::sync::Mutex::new(Vec::new());

fn abandoned_waits() -> std::sync::MutexGuard<'static, Vec<(Client, String)>> {
    ABANDONED_WAITS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What became of an operation whose wait was abandoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbandonedOutcome {
    /// LXD allowed it to be cancelled, and it was.
    Cancelled,
    /// LXD does not allow cancelling it (or refused): it goes on on the server.
    GoesOn,
    /// It had ended by the time it was looked at.
    Ended,
}

/// An operation whose wait Ctrl-C abandoned, and what became of it.
#[derive(Debug, Clone)]
pub struct AbandonedOperation {
    /// The operation's id.
    pub id: String,
    /// LXD's description of it ("Creating instance", "Publishing image").
    pub description: String,
    /// Where it runs: `project 'default' of remote 'main'`.
    pub place: String,
    /// What became of it.
    pub outcome: AbandonedOutcome,
}

/// Cancels, where LXD allows (`may_cancel`), the operations whose waits were abandoned since
/// the last call, and says what became of each: a Ctrl-C then stops the server's work too, or
/// says that it goes on and which operation it is.
pub async fn settle_abandoned_waits() -> Vec<AbandonedOperation> {
    let abandoned = std::mem::take(&mut *abandoned_waits());
    let settle = abandoned.iter().map(|(client, id)| async move {
        let path = format!("/1.0/operations/{}", segment(id));
        let (description, may_cancel, ended) = match client.get(&path).await {
            Ok(value) => match Operation::from_value(value) {
                Ok(op) => (
                    op.field("description")
                        .and_then(|d| d.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    op.field("may_cancel").and_then(|c| c.as_bool()) == Some(true),
                    op.is_final(),
                ),
                Err(_) => (String::new(), false, false),
            },
            // Gone: it ended, and LXD forgot it.
            Err(e) if e.kind() == ErrorKind::NotFound => (String::new(), false, true),
            Err(_) => (String::new(), false, false),
        };
        let outcome = if ended {
            AbandonedOutcome::Ended
        } else if may_cancel && client.cancel_operation(id).await.is_ok() {
            AbandonedOutcome::Cancelled
        } else {
            AbandonedOutcome::GoesOn
        };
        AbandonedOperation {
            id: id.clone(),
            description,
            place: client.place(),
            outcome,
        }
    });
    futures_util::future::join_all(settle).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lxd::fake::{FakeAnswer, FakeLxd, operation};
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake whose `/wait` answers come from `wait` (called with the poll's number) and whose
    /// operation reads as `state`.
    fn fake(
        wait: impl Fn(usize) -> FakeAnswer + Send + Sync + 'static,
        state: impl Fn() -> FakeAnswer + Send + Sync + 'static,
    ) -> FakeLxd {
        let polls = AtomicUsize::new(0);
        FakeLxd::new(move |req| {
            if req.path.starts_with("/1.0/operations/op1/wait?timeout=") {
                wait(polls.fetch_add(1, Ordering::SeqCst))
            } else if req.path == "/1.0/operations/op1" {
                state()
            } else {
                FakeAnswer::error(404, "not found")
            }
        })
    }

    fn running() -> FakeAnswer {
        FakeAnswer::sync(operation("op1", 103, json!({}), ""))
    }

    /// LXD 5: a long poll that ran out answers the running operation; the wait polls again
    /// and returns the final state from the wait answer itself.
    #[tokio::test]
    async fn a_wait_polls_again_until_the_operation_ends() {
        let lxd = fake(
            |n| match n {
                0 | 1 => running(),
                _ => FakeAnswer::sync(operation("op1", 200, json!({"polls": n + 1}), "")),
            },
            running,
        );
        let op = lxd
            .client(TransportOptions::default())
            .wait_operation("op1", None)
            .await
            .expect("success");
        assert_eq!(op.metadata()["polls"], 3);
        assert_eq!(lxd.seen().len(), 3, "{:?}", lxd.seen());
    }

    /// LXD 6: a long poll that ran out is an error envelope; the operation, still running, says
    /// it was not a failure.
    #[tokio::test]
    async fn an_expired_long_poll_is_told_from_a_failure_by_the_operation() {
        let lxd = fake(
            |n| match n {
                0 => FakeAnswer::error(504, "context deadline exceeded"),
                _ => FakeAnswer::sync(operation("op1", 200, json!({}), "")),
            },
            running,
        );
        let client = lxd.client(TransportOptions::default());
        client.wait_operation("op1", None).await.expect("success");
        let seen = lxd.seen();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[1], "GET /1.0/operations/op1");
    }

    /// A failed operation is `OperationFailed` with its error text and metadata, whether the
    /// wait answers its state (LXD 5) or an error envelope (LXD 6).
    #[tokio::test]
    async fn a_failed_operation_keeps_its_text_and_metadata() {
        let failed = || FakeAnswer::sync(operation("op1", 400, json!({"return": 7}), "boom"));
        for lxd in [
            fake(move |_| failed(), running),
            fake(|_| FakeAnswer::error(400, "boom"), failed),
        ] {
            let err = lxd
                .client(TransportOptions::default())
                .wait_operation("op1", None)
                .await
                .expect_err("failed");
            match err {
                Error::OperationFailed {
                    message, metadata, ..
                } => {
                    assert_eq!(message, "boom");
                    assert_eq!(metadata["return"], 7);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// An operation the server has forgotten is `NotFound`, saying why its result is lost; a
    /// deadline that passes is `Timeout` naming the operation.
    #[tokio::test]
    async fn gone_and_timed_out_operations_say_so() {
        let gone = fake(|_| FakeAnswer::error(404, "not found"), running);
        let err = gone
            .client(TransportOptions::default())
            .wait_operation("op1", None)
            .await
            .expect_err("gone");
        assert!(err.is_not_found() && err.to_string().contains("forgets finished operations"));
        let slow = fake(|_| running(), running);
        let err = slow
            .client(TransportOptions::default())
            .wait_operation("op1", Some(Duration::ZERO))
            .await
            .expect_err("timed out");
        assert_eq!(err.kind(), crate::lxd::ErrorKind::Timeout);
        assert_eq!(err.operation(), Some("op1"));
    }

    /// A wait dropped before its operation ended (what Ctrl-C does) leaves the operation to
    /// `settle_abandoned_waits`: one LXD may cancel is cancelled, one it may not goes on, one
    /// that has ended is left alone.
    #[tokio::test]
    async fn abandoned_waits_are_cancelled_where_lxd_allows() {
        let state = |id: &str, may_cancel: bool, code: u16| {
            let mut op = operation(id, code, json!({}), "");
            op["may_cancel"] = may_cancel.into();
            op["description"] = "Doing things".into();
            FakeAnswer::sync(op)
        };
        let lxd = FakeLxd::new(move |req| {
            let id = req.path.trim_start_matches("/1.0/operations/");
            let id = id.split(['/', '?']).next().unwrap_or_default();
            match (req.method.as_str(), id) {
                ("DELETE", _) => FakeAnswer::sync(json!({})),
                (_, "abandon-cancellable") => state(id, true, 103),
                (_, "abandon-ended") if !req.path.contains("/wait") => state(id, true, 200),
                _ => state(id, false, 103),
            }
        });
        let client = lxd.client(TransportOptions::default());
        for id in ["abandon-cancellable", "abandon-kept", "abandon-ended"] {
            let wait = client.wait_operation(id, None);
            let dropped = tokio::time::timeout(Duration::from_millis(30), wait).await;
            assert!(dropped.is_err(), "{id}: the wait was still going");
        }
        let settled = settle_abandoned_waits().await;
        let outcome = |id: &str| {
            settled
                .iter()
                .find(|op| op.id == id)
                .map(|op| (op.outcome.clone(), op.description.clone()))
        };
        let doing = "Doing things".to_owned();
        assert_eq!(
            outcome("abandon-cancellable"),
            Some((AbandonedOutcome::Cancelled, doing.clone()))
        );
        assert_eq!(
            outcome("abandon-kept"),
            Some((AbandonedOutcome::GoesOn, doing.clone()))
        );
        assert_eq!(
            outcome("abandon-ended"),
            Some((AbandonedOutcome::Ended, doing))
        );
        let deletes: Vec<String> = lxd
            .seen()
            .into_iter()
            .filter(|r| r.starts_with("DELETE"))
            .collect();
        assert_eq!(deletes, ["DELETE /1.0/operations/abandon-cancellable"]);
    }
}
