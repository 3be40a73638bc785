//! Instances: `/1.0/instances` and everything below one instance except exec and files.

use serde_json::{Map, Value, json};

use super::client::Client;
use super::error::{Error, Result, found};
use super::object::{self, Update};
use super::request::{Request, segment};
use super::response::{Loaded, Operation};

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

/// The path of one instance.
pub fn path(name: &str) -> String {
    format!("/1.0/instances/{}", segment(name))
}

/// Requests of the instance API, as pure functions.
pub mod requests {
    use super::*;

    /// `GET /1.0/instances?recursion=1[&instance-type=...]`: every instance, whole, in one request.
    pub fn list(kind: Option<InstanceType>) -> Request {
        Request::get("/1.0/instances")
            .query("recursion", "1")
            .query_opt("instance-type", kind.map(InstanceType::as_str))
    }

    /// `GET /1.0/instances/<name>`.
    pub fn get(name: &str) -> Request {
        Request::get(path(name))
    }

    /// `POST /1.0/instances[?target=]` with the create body.
    pub fn create(body: Value, target: Option<&str>) -> Request {
        Request::post("/1.0/instances", body).query_opt("target", target)
    }

    /// `PATCH` (only the changed keys) or `PUT` (the whole writable object) with `If-Match`.
    pub fn save(name: &str, update: Update, etag: Option<&str>) -> Request {
        match update {
            Update::Patch(body) => Request::patch(path(name), body),
            Update::Put(body) => Request::put(path(name), body),
        }
        .if_match(etag)
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
    pub fn change_state(
        name: &str,
        action: &str,
        timeout: i64,
        force: bool,
        stateful: bool,
    ) -> Request {
        Request::put(
            format!("{}/state", path(name)),
            json!({ "action": action, "timeout": timeout, "force": force, "stateful": stateful }),
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

/// What `save` must send to turn `loaded` into `current` (see [`object::diff`]).
pub fn diff(loaded: &Map<String, Value>, current: &Map<String, Value>) -> Option<Update> {
    object::diff(loaded, current, &WRITABLE)
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

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Loads one instance; `NotFound` when it is missing or of another type.
    pub async fn get(&self, name: &str) -> Result<Loaded> {
        let loaded = self.client.object(&requests::get(name)).await?;
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

    /// Every instance, whole, in one request.
    pub async fn all(&self) -> Result<Vec<Map<String, Value>>> {
        self.client.objects(&requests::list(self.kind)).await
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

    /// Starts a state change (`start`, `stop`, `restart`, `freeze`, `unfreeze`).
    pub async fn change_state(
        &self,
        name: &str,
        action: &str,
        timeout: i64,
        force: bool,
        stateful: bool,
    ) -> Result<Operation> {
        self.client
            .operation(&requests::change_state(
                name, action, timeout, force, stateful,
            ))
            .await
    }

    /// The instance's runtime state (`status`, `cpu`, `memory`, `network`, ...).
    pub async fn state(&self, name: &str) -> Result<Value> {
        Ok(self
            .client
            .call(&requests::state(name))
            .await?
            .into_metadata())
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
            requests::list(Some(InstanceType::Container)).path_and_query(None),
            "/1.0/instances?recursion=1&instance-type=container"
        );
        assert_eq!(
            requests::create(json!({}), Some("m2")).path_and_query(Some("p")),
            "/1.0/instances?target=m2&project=p"
        );
    }

    #[test]
    fn state_changes_send_every_field() {
        let r = requests::change_state("c1", "stop", 30, true, false);
        assert_eq!(r.path, "/1.0/instances/c1/state");
        assert_eq!(
            r.body,
            Some(json!({"action": "stop", "timeout": 30, "force": true, "stateful": false}))
        );
    }

    #[test]
    fn saves_carry_if_match() {
        let r = requests::save("c1", Update::Patch(json!({})), Some("\"t\""));
        assert_eq!(r.method, reqwest::Method::PATCH);
        assert_eq!(r.headers, vec![("If-Match", "\"t\"".to_owned())]);
    }
}
