//! Instance snapshots: `/1.0/instances/<name>/snapshots`.

/// The fields of a snapshot that a put or patch writes.
pub const WRITABLE: [&str; 1] = ["expires_at"];

use serde_json::{Map, Value, json};

use super::client::Client;
use super::error::{Result, found};
use super::instance;
use super::object::{ObjectApi, Update};
use super::request::{Request, segment};
use super::response::{Loaded, Operation};

/// The path of one snapshot.
pub fn path(instance: &str, name: &str) -> String {
    format!("{}/snapshots/{}", instance::path(instance), segment(name))
}

/// Options of a new snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateSnapshot {
    /// The snapshot name (LXD picks `snapN` when empty).
    pub name: Option<String>,
    /// Save the running state too (needs CRIU).
    pub stateful: bool,
    /// When LXD deletes it by itself (RFC 3339).
    pub expires_at: Option<String>,
}

/// Requests of the snapshot API, as pure functions.
pub mod requests {
    use super::*;

    /// Every snapshot of an instance, whole, in one request.
    pub fn list(instance: &str) -> Request {
        Request::get(format!("{}/snapshots", instance::path(instance))).query("recursion", "1")
    }

    /// One snapshot.
    pub fn get(instance: &str, name: &str) -> Request {
        Request::get(path(instance, name))
    }

    /// Creates a snapshot.
    pub fn create(instance: &str, opts: &CreateSnapshot) -> Request {
        let mut body = json!({ "stateful": opts.stateful });
        if let Some(name) = &opts.name {
            body["name"] = name.as_str().into();
        }
        if let Some(at) = &opts.expires_at {
            body["expires_at"] = at.as_str().into();
        }
        Request::post(format!("{}/snapshots", instance::path(instance)), body)
    }

    /// Renames a snapshot.
    pub fn rename(instance: &str, name: &str, new_name: &str) -> Request {
        Request::post(path(instance, name), json!({ "name": new_name }))
    }

    /// Deletes a snapshot.
    pub fn delete(instance: &str, name: &str) -> Request {
        Request::delete(path(instance, name))
    }
}

/// The snapshots of one instance.
#[derive(Debug, Clone)]
pub struct Snapshots {
    client: Client,
    instance: String,
}

impl Snapshots {
    /// The snapshots of `instance`.
    pub fn new(client: Client, instance: &str) -> Self {
        Snapshots {
            client,
            instance: instance.to_owned(),
        }
    }

    /// The instance whose snapshots these are.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Every snapshot, whole.
    pub async fn all(&self) -> Result<Vec<Map<String, Value>>> {
        self.client.objects(&requests::list(&self.instance)).await
    }

    /// True when the snapshot exists.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        found(self.get(name).await)
    }

    /// Starts creating a snapshot.
    pub async fn create(&self, opts: &CreateSnapshot) -> Result<Operation> {
        self.client
            .operation(&requests::create(&self.instance, opts))
            .await
    }
}

impl ObjectApi for Snapshots {
    fn writable(&self) -> &'static [&'static str] {
        &WRITABLE
    }

    async fn get(&self, name: &str) -> Result<Loaded> {
        self.client
            .object(&requests::get(&self.instance, name))
            .await
            .map_err(|e| {
                e.naming_missing(|| {
                    let snapshot = format!("{}/{name}", self.instance);
                    self.client.missing("Snapshot", &snapshot)
                })
            })
    }

    async fn save(
        &self,
        name: &str,
        update: Update,
        etag: Option<&str>,
    ) -> Result<Option<Operation>> {
        self.client
            .start(&update.request(path(&self.instance, name), etag))
            .await
    }

    async fn delete(&self, name: &str) -> Result<Option<Operation>> {
        self.client
            .start(&requests::delete(&self.instance, name))
            .await
    }

    async fn rename(&self, name: &str, new_name: &str) -> Result<Option<Operation>> {
        self.client
            .start(&requests::rename(&self.instance, name, new_name))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_sends_only_what_was_given() {
        let r = requests::create("c1", &CreateSnapshot::default());
        assert_eq!(r.path, "/1.0/instances/c1/snapshots");
        assert_eq!(r.body, Some(json!({"stateful": false})));
        let r = requests::create(
            "c1",
            &CreateSnapshot {
                name: Some("s0".into()),
                stateful: true,
                expires_at: Some("2030-01-01T00:00:00Z".into()),
            },
        );
        assert_eq!(
            r.body,
            Some(json!({"name": "s0", "stateful": true, "expires_at": "2030-01-01T00:00:00Z"}))
        );
    }

    #[test]
    fn snapshot_paths_escape_names() {
        assert_eq!(path("c 1", "s/0"), "/1.0/instances/c%201/snapshots/s%2F0");
    }
}
