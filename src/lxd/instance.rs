//! Instances: `/1.0/instances` and everything below one instance except exec and files.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::client::Client;
use super::error::{Error, Result, found};
use super::events::{EventFilter, EventStream};
use super::object::{self, Update};
use super::request::{Request, segment};
use super::response::{Loaded, Operation, RawObject};

/// An instance type filter for the typed managers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceType {
    /// `container`.
    Container,
    /// `virtual-machine`.
    VirtualMachine,
}

impl InstanceType {
    /// LXD's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceType::Container => "container",
            InstanceType::VirtualMachine => "virtual-machine",
        }
    }
}

/// The attributes of an instance that `save` writes back.
pub const WRITABLE: [&str; 6] = [
    "architecture",
    "config",
    "devices",
    "ephemeral",
    "profiles",
    "description",
];

/// What a state change does to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateAction {
    /// Start it.
    Start,
    /// Stop it (cleanly within the timeout, or at once when forced).
    Stop,
    /// Stop and start it.
    Restart,
    /// Freeze its processes.
    Freeze,
    /// Thaw them.
    Unfreeze,
}

impl StateAction {
    /// Every action, in the order scripts list them.
    pub const ALL: [StateAction; 5] = [
        StateAction::Start,
        StateAction::Stop,
        StateAction::Restart,
        StateAction::Freeze,
        StateAction::Unfreeze,
    ];

    /// LXD's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            StateAction::Start => "start",
            StateAction::Stop => "stop",
            StateAction::Restart => "restart",
            StateAction::Freeze => "freeze",
            StateAction::Unfreeze => "unfreeze",
        }
    }
}

/// A state change: the action and how it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    /// What to do.
    pub action: StateAction,
    /// How long a clean stop may take, in seconds, before it fails (or is forced).
    pub timeout: i64,
    /// Stop at once rather than cleanly.
    pub force: bool,
    /// Stop with the running state saved (CRIU), or start from it.
    pub stateful: bool,
}

impl StateChange {
    /// `action` with a 30 s timeout, neither forced nor stateful.
    pub fn new(action: StateAction) -> StateChange {
        StateChange {
            action,
            timeout: 30,
            force: false,
            stateful: false,
        }
    }

    /// The same change, forced.
    pub fn forced(self) -> StateChange {
        StateChange {
            force: true,
            ..self
        }
    }

    /// The same change with another timeout.
    pub fn timeout(self, seconds: i64) -> StateChange {
        StateChange {
            timeout: seconds,
            ..self
        }
    }
}

/// The collection of instances.
pub const COLLECTION: &str = "/1.0/instances";

/// The path of one instance.
pub fn path(name: &str) -> String {
    format!("/1.0/instances/{}", segment(name))
}

/// Requests of the instance API, as pure functions.
pub mod requests {
    use super::*;

    /// `GET /1.0/instances?recursion=...[&instance-type=...]`: every instance in one request, as
    /// `listing` asks: `recursion=1` (whole), `recursion=2` (each instance with its
    /// `state`, `snapshots` and `backups`), or `recursion=2;fields=state.disk,...` (the state's
    /// costly parts limited to those named; the server must have
    /// `instances_state_selective_recursion`).
    pub fn list(kind: Option<InstanceType>, listing: &Listing) -> Request {
        let recursion = match (&listing.state, listing.selective) {
            (None, _) => "1".to_owned(),
            (Some(_), false) | (Some(StateFields::All), true) => "2".to_owned(),
            (Some(StateFields::Only(fields)), true) => format!("2;fields={}", fields.join(",")),
        };
        Request::get(COLLECTION)
            .query("recursion", recursion)
            .query_opt("instance-type", kind.map(InstanceType::as_str))
    }

    /// `GET /1.0/instances/<name>`.
    pub fn get(name: &str) -> Request {
        Request::get(path(name))
    }

    /// `POST /1.0/instances[?target=]` with the create body.
    pub fn create(body: Value, target: Option<&str>) -> Request {
        Request::post(COLLECTION, body).query_opt("target", target)
    }

    /// `PATCH` (only the changed keys) or `PUT` (the whole writable object) with `If-Match`.
    pub fn save(name: &str, update: Update, etag: Option<&str>) -> Request {
        update.request(path(name), etag)
    }

    /// `DELETE /1.0/instances/<name>`.
    pub fn delete(name: &str) -> Request {
        Request::delete(path(name))
    }

    /// `POST /1.0/instances/<name>` `{"name": new}`.
    pub fn rename(name: &str, new_name: &str) -> Request {
        Request::post(path(name), json!({ "name": new_name }))
    }

    /// `PUT /1.0/instances/<name>/state`.
    pub fn change_state(name: &str, change: &StateChange) -> Request {
        Request::put(
            format!("{}/state", path(name)),
            json!({
                "action": change.action.as_str(),
                "timeout": change.timeout,
                "force": change.force,
                "stateful": change.stateful,
            }),
        )
    }

    /// `GET /1.0/instances/<name>/state`.
    pub fn state(name: &str) -> Request {
        Request::get(format!("{}/state", path(name)))
    }

    /// `PUT /1.0/instances/<name>` `{"restore": snapshot, "stateful": ...}`.
    pub fn restore(name: &str, snapshot: &str, stateful: bool) -> Request {
        Request::put(
            path(name),
            json!({ "restore": snapshot, "stateful": stateful }),
        )
    }
}

/// Which parts of each instance's state a listing carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateFields {
    /// All of it (`recursion=2`).
    All,
    /// Status, CPU, memory and processes, and of the costly parts only these (`state.disk`,
    /// `state.network`; none when empty).
    Only(Vec<String>),
}

/// How much a listing of instances carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Each instance's state too, whole or in part; `None` for the instances alone.
    pub state: Option<StateFields>,
    /// Whether the server can limit the state's parts (`instances_state_selective_recursion`);
    /// without it, a listing with part of the state gets all of it.
    pub selective: bool,
}

/// The costly parts of an instance's state that a selective listing can name.
pub const STATE_FIELDS: [&str; 2] = ["state.disk", "state.network"];

/// An instance operation whose failure the client explains in the terms LXD and Incus share.
///
/// The two servers fail some calls differently: a create onto a taken name fails in its
/// operation on both (LXD 5.0: "This "instances" entry already exists"; Incus: "UNIQUE constraint
/// failed"), a create from a missing image alias fails at once on LXD (404) and in the operation
/// on Incus ("Image not provided for instance creation"), and after a failed start Incus goes on
/// stopping the instance for a moment, refusing other calls meanwhile. Each failure is explained
/// by looking at the server, never by reading its message text.
#[derive(Debug, Clone, PartialEq)]
pub enum Watched {
    /// A create: a name taken before the operation began is `Conflict`, a missing local image
    /// alias `NotFound`.
    Create {
        /// The name asked for (`None` when the server picks one).
        name: Option<String>,
        /// The local image alias of the source, if any.
        alias: Option<String>,
        /// When the operation began (its `created_at`).
        began: String,
    },
    /// A start: its failure is returned once the server has stopped the instance again.
    Start {
        /// The instance.
        name: String,
    },
}

impl Watched {
    /// What a create started by `op` with `body` should be checked for if it fails.
    pub fn create(body: &Value, op: &Operation) -> Watched {
        let source = body.get("source");
        let text = |v: Option<&Value>, key: &str| {
            v.and_then(|v| v.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let local_image =
            text(source, "type").as_deref() == Some("image") && text(source, "server").is_none();
        Watched::Create {
            name: text(Some(body), "name"),
            alias: text(source, "alias").filter(|_| local_image),
            began: op
                .other
                .get("created_at")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// How long a failed start may take the server to stop the instance again before its error is
/// returned anyway.
const SETTLE_AFTER_FAILED_START: Duration = Duration::from_secs(30);

/// How long after a failed start an instance that reads as not running is given to turn
/// Running (the server's own stop then follows, see [`Instances::explain_failure`]).
const SETTLE_GRACE: Duration = Duration::from_millis(500);

/// True when RFC 3339 time `a` is strictly before `b` (both UTC, as LXD and Incus write them,
/// with any number of fractional digits); false when either does not parse.
fn earlier(a: &str, b: &str) -> bool {
    fn parts(t: &str) -> Option<(&str, String)> {
        let t = t.strip_suffix('Z')?;
        let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
        (whole.len() == 19).then(|| (whole, format!("{fraction:0<9}")))
    }
    match (parts(a), parts(b)) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    }
}

impl object::ObjectApi for Instances {
    fn writable(&self) -> &'static [&'static str] {
        &WRITABLE
    }

    async fn get(&self, name: &str) -> Result<Loaded> {
        Instances::get(self, name).await
    }

    async fn save(
        &self,
        name: &str,
        update: Update,
        etag: Option<&str>,
    ) -> Result<Option<Operation>> {
        Instances::save(self, name, update, etag).await
    }

    async fn delete(&self, name: &str) -> Result<Option<Operation>> {
        Instances::delete(self, name).await.map(Some)
    }

    async fn rename(&self, name: &str, new_name: &str) -> Result<Option<Operation>> {
        Instances::rename(self, name, new_name).await.map(Some)
    }

    async fn current_etag(
        &self,
        name: &str,
        loaded: &Map<String, Value>,
    ) -> Result<Option<String>> {
        Instances::current_etag(self, name, loaded).await
    }
}

/// The instance API of one client, optionally filtered by type.
#[derive(Debug, Clone)]
pub struct Instances {
    client: Client,
    kind: Option<InstanceType>,
}

impl Instances {
    /// The instances of `client`, all types or one.
    pub fn new(client: Client, kind: Option<InstanceType>) -> Self {
        Instances { client, kind }
    }

    /// The type filter.
    pub fn kind(&self) -> Option<InstanceType> {
        self.kind
    }

    /// Loads one instance; `NotFound` when it is missing or of another type.
    pub async fn get(&self, name: &str) -> Result<Loaded> {
        let loaded = self
            .client
            .object(&requests::get(name))
            .await
            .map_err(|e| e.naming_missing(|| self.client.missing("Instance", name)))?;
        if let Some(kind) = self.kind {
            let actual = loaded
                .fields
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("container");
            if actual != kind.as_str() {
                return Err(Error::Api {
                    status: 404,
                    message: format!("Instance '{name}' is a {actual}, not a {}", kind.as_str()),
                    operation: None,
                });
            }
        }
        Ok(loaded)
    }

    /// True when the instance exists (and is of this manager's type).
    pub async fn exists(&self, name: &str) -> Result<bool> {
        found(self.get(name).await)
    }

    /// Every instance as `listing` asks, in one request, each unparsed until read.
    pub async fn all(&self, listing: &Listing) -> Result<Vec<RawObject>> {
        self.client
            .raw_objects(&requests::list(self.kind, listing))
            .await
    }

    /// Starts creating an instance; the manager's type is filled in when the body has none.
    pub async fn create(&self, mut body: Value, target: Option<&str>) -> Result<Operation> {
        if let (Some(kind), Value::Object(map)) = (self.kind, &mut body) {
            map.entry("type").or_insert_with(|| kind.as_str().into());
        }
        self.client.operation(&requests::create(body, target)).await
    }

    /// Saves changes; `None` when nothing changed.
    pub async fn save(
        &self,
        name: &str,
        update: Update,
        etag: Option<&str>,
    ) -> Result<Option<Operation>> {
        self.client.start(&requests::save(name, update, etag)).await
    }

    /// The ETag to save an object loaded without one (from a list): fetched now, and only if the
    /// server's writable fields still equal what was loaded; otherwise `PreconditionFailed`.
    pub async fn current_etag(
        &self,
        name: &str,
        loaded: &Map<String, Value>,
    ) -> Result<Option<String>> {
        let now = self.get(name).await?;
        let changed = WRITABLE
            .iter()
            .any(|k| now.fields.get(*k) != loaded.get(*k));
        if changed {
            return Err(Error::Api {
                status: 412,
                message: format!(
                    "instance '{name}' changed on the server since it was loaded; sync() it and make the change again"
                ),
                operation: None,
            });
        }
        Ok(now.etag)
    }

    /// Starts deleting an instance.
    pub async fn delete(&self, name: &str) -> Result<Operation> {
        self.client.operation(&requests::delete(name)).await
    }

    /// Starts renaming an instance.
    pub async fn rename(&self, name: &str, new_name: &str) -> Result<Operation> {
        self.client
            .operation(&requests::rename(name, new_name))
            .await
    }

    /// Starts a state change.
    pub async fn change_state(&self, name: &str, change: &StateChange) -> Result<Operation> {
        self.client
            .operation(&requests::change_state(name, change))
            .await
    }

    /// Changes the instance's state and waits until it is done (migration's stops and starts,
    /// a site's status).
    pub async fn change_state_and_wait(&self, name: &str, change: &StateChange) -> Result<()> {
        let op = self.change_state(name, change).await?;
        self.client.wait_operation(op.id(), None).await.map(|_| ())
    }

    /// The instance's runtime state (`status`, `cpu`, `memory`, `network`, ...).
    pub async fn state(&self, name: &str) -> Result<Value> {
        Ok(self
            .client
            .call(&requests::state(name))
            .await?
            .into_metadata())
    }

    /// Turns the failure of a watched operation into the error both servers mean by it (see
    /// [`Watched`]); other failures are returned as they are.
    pub async fn explain_failure(&self, watched: &Watched, failure: Error) -> Error {
        if !matches!(failure, Error::OperationFailed { .. }) {
            return failure;
        }
        match watched {
            Watched::Create { name, alias, began } => {
                if let Some(name) = name {
                    let taken = match self.client.object(&requests::get(name)).await {
                        Ok(existing) => existing
                            .fields
                            .get("created_at")
                            .and_then(Value::as_str)
                            .is_some_and(|created| earlier(created, began)),
                        Err(_) => false,
                    };
                    if taken {
                        return Error::Api {
                            status: 409,
                            message: format!(
                                "instance '{name}' already exists (the server said: {failure})"
                            ),
                            operation: failure.operation().map(str::to_owned),
                        };
                    }
                }
                if let Some(alias) = alias {
                    let alias_path = format!("/1.0/images/aliases/{}", segment(alias));
                    if let Err(e) = self.client.get(&alias_path).await
                        && e.is_not_found()
                    {
                        return Error::Api {
                            status: 404,
                            message: format!(
                                "image alias '{alias}' not found (the server said: {failure})"
                            ),
                            operation: failure.operation().map(str::to_owned),
                        };
                    }
                }
                failure
            }
            Watched::Start { name } => {
                self.await_not_running(name).await;
                failure
            }
        }
    }

    /// Waits, up to [`SETTLE_AFTER_FAILED_START`], until the server has stopped an instance whose
    /// start failed. When the container itself was launched before the failure, the server goes
    /// on stopping it and refuses other calls meanwhile ("Instance is running"): on Incus 6.0 the
    /// instance reports Stopped for a few milliseconds, then Running for about half a second,
    /// then Stopped with an `instance-shutdown` lifecycle event (measured). So the instance is
    /// read again whenever one of its lifecycle events arrives, and once more after
    /// [`SETTLE_GRACE`] when it first reads as not running. No polling: between reads it sleeps
    /// on the event stream.
    async fn await_not_running(&self, name: &str) {
        let filter = EventFilter {
            types: vec!["lifecycle".to_owned()],
            ..EventFilter::default()
        };
        let Ok(events) = EventStream::open(&self.client, &filter).await else {
            return;
        };
        let deadline = Instant::now() + SETTLE_AFTER_FAILED_START;
        let source = path(name);
        let mut graced = false;
        loop {
            let running = match self.client.object(&requests::get(name)).await {
                Ok(loaded) => {
                    loaded.fields.get("status").and_then(Value::as_str) == Some("Running")
                }
                Err(_) => false,
            };
            let wait_until = if running {
                deadline
            } else if !graced {
                graced = true;
                deadline.min(Instant::now() + SETTLE_GRACE)
            } else {
                break;
            };
            // Sleep until the next lifecycle event of this instance, or `wait_until`.
            loop {
                let left = wait_until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let Some(event) = events.next(Some(left)).await else {
                    break;
                };
                let about = event
                    .pointer("/metadata/source")
                    .and_then(Value::as_str)
                    .and_then(|s| s.split('?').next())
                    .is_some_and(|s| s == source);
                if about {
                    break;
                }
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        events.close();
    }

    /// Starts restoring a snapshot.
    pub async fn restore(&self, name: &str, snapshot: &str, stateful: bool) -> Result<Operation> {
        self.client
            .operation(&requests::restore(name, snapshot, stateful))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_one_recursive_request() {
        assert_eq!(
            requests::list(Some(InstanceType::Container), &Listing::default()).path_and_query(None),
            "/1.0/instances?recursion=1&instance-type=container"
        );
        assert_eq!(
            requests::create(json!({}), Some("m2")).path_and_query(Some("p")),
            "/1.0/instances?target=m2&project=p"
        );
    }

    #[test]
    fn listings_ask_for_as_much_state_as_wanted() {
        let with = |state, selective| {
            requests::list(None, &Listing { state, selective }).path_and_query(None)
        };
        assert_eq!(with(None, true), "/1.0/instances?recursion=1");
        assert_eq!(
            with(Some(StateFields::All), true),
            "/1.0/instances?recursion=2"
        );
        let network = || Some(StateFields::Only(vec!["state.network".to_owned()]));
        assert_eq!(
            with(network(), true),
            "/1.0/instances?recursion=2%3Bfields%3Dstate.network"
        );
        assert_eq!(
            with(network(), false),
            "/1.0/instances?recursion=2",
            "the fallback"
        );
        assert_eq!(
            with(Some(StateFields::Only(Vec::new())), true),
            "/1.0/instances?recursion=2%3Bfields%3D"
        );
    }

    #[test]
    fn state_changes_send_every_field() {
        let r = requests::change_state("c1", &StateChange::new(StateAction::Stop).forced());
        assert_eq!(r.path, "/1.0/instances/c1/state");
        assert_eq!(
            r.body,
            Some(json!({"action": "stop", "timeout": 30, "force": true, "stateful": false}))
        );
    }

    #[test]
    fn creates_are_watched_for_taken_names_and_missing_local_aliases() {
        let op = Operation::from_value(
            json!({"id": "o", "created_at": "2026-12-01T05:14:59.53955739Z"}),
        )
        .expect("an operation");
        let body = json!({"name": "c1", "source": {"type": "image", "alias": "busybox"}});
        assert_eq!(
            Watched::create(&body, &op),
            Watched::Create {
                name: Some("c1".into()),
                alias: Some("busybox".into()),
                began: "2026-12-01T05:14:59.53955739Z".into()
            }
        );
        // An alias on an image server is not looked up locally; a server-picked name is unknown.
        let remote = json!({"source": {"type": "image", "alias": "x", "server": "https://s"}});
        assert_eq!(
            Watched::create(&remote, &op),
            Watched::Create {
                name: None,
                alias: None,
                began: "2026-12-01T05:14:59.53955739Z".into()
            }
        );
    }

    #[test]
    fn times_compare_whatever_their_fraction() {
        assert!(earlier(
            "2026-12-01T05:14:55.715923509Z",
            "2026-12-01T05:14:59.53955739Z"
        ));
        assert!(earlier("2026-12-01T05:14:59Z", "2026-12-01T05:14:59.1Z"));
        assert!(earlier("2026-12-01T05:14:59.09Z", "2026-12-01T05:14:59.1Z"));
        assert!(!earlier("2026-12-01T05:14:59.1Z", "2026-12-01T05:14:59.1Z"));
        assert!(!earlier("2026-12-01T05:14:59.2Z", "2026-12-01T05:14:59.1Z"));
        assert!(!earlier("yesterday", "2026-12-01T05:14:59.1Z"));
    }

    #[test]
    fn saves_carry_if_match() {
        let r = requests::save("c1", Update::Patch(json!({})), Some("\"t\""));
        assert_eq!(r.method, crate::lxd::request::Method::PATCH);
        assert_eq!(r.headers, vec![("If-Match", "\"t\"".to_owned())]);
    }
}
