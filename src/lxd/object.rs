//! The LXD objects that share one shape: a collection of keyed objects with writable fields,
//! saved with PATCH or PUT and `If-Match` (profiles, networks and their forwards, storage pools
//! and volumes, projects, certificates, cluster members).

use serde_json::{Map, Value, json};

use super::client::Client;
use super::error::{Result, found};
use super::request::{Request, segment};
use super::response::{Loaded, Operation};

/// What differs between the kinds of object.
#[derive(Debug)]
pub struct Kind {
    /// What LXD calls one such object, for messages (`Profile`, `Storage volume`).
    pub noun: &'static str,
    /// The field that holds the key (`name`, `fingerprint`, `server_name`).
    pub key: &'static str,
    /// The fields `save` writes back.
    pub writable: &'static [&'static str],
    /// The other fields scripts read.
    pub read_only: &'static [&'static str],
    /// Whether `rename` exists (`POST <object> {"name": ...}`).
    pub renamable: bool,
}

/// Profiles.
pub const PROFILE: Kind = Kind {
    noun: "Profile",
    key: "name",
    writable: &["config", "devices", "description"],
    read_only: &["name", "used_by"],
    renamable: true,
};

/// Networks.
pub const NETWORK: Kind = Kind {
    noun: "Network",
    key: "name",
    writable: &["config", "description"],
    read_only: &["name", "type", "managed", "status", "used_by", "locations"],
    renamable: true,
};

/// Storage pools.
pub const STORAGE_POOL: Kind = Kind {
    noun: "Storage pool",
    key: "name",
    writable: &["config", "description"],
    read_only: &["name", "driver", "status", "used_by", "locations"],
    renamable: false,
};

/// Storage volumes (keyed by name within a pool and type).
pub const STORAGE_VOLUME: Kind = Kind {
    noun: "Storage volume",
    key: "name",
    writable: &["config", "description"],
    read_only: &[
        "name",
        "type",
        "content_type",
        "used_by",
        "location",
        "created_at",
    ],
    renamable: true,
};

/// Snapshots of a storage volume (`<volume>/snapshots`), keyed by their short name.
pub const STORAGE_VOLUME_SNAPSHOT: Kind = Kind {
    noun: "Storage volume snapshot",
    key: "name",
    writable: &["description", "expires_at"],
    read_only: &["name", "created_at", "content_type", "config"],
    renamable: true,
};

/// A network's forwards (`<network>/forwards`), keyed by their listen address.
pub const NETWORK_FORWARD: Kind = Kind {
    noun: "Network forward",
    key: "listen_address",
    writable: &["config", "description", "ports"],
    read_only: &["listen_address", "location"],
    renamable: false,
};

/// The collection of a network's forwards.
pub fn forwards_path(network: &str) -> String {
    format!("{NETWORKS}/{}/forwards", segment(network))
}

/// The collection of a storage pool's volumes.
pub fn volumes_path(pool: &str) -> String {
    format!("/1.0/storage-pools/{}/volumes", segment(pool))
}

/// Where the cluster is described (`GET`: enabled, this member's name).
pub const CLUSTER: &str = "/1.0/cluster";
/// The collection of profiles.
pub const PROFILES: &str = "/1.0/profiles";
/// The collection of networks.
pub const NETWORKS: &str = "/1.0/networks";
/// The collection of storage pools.
pub const STORAGE_POOLS: &str = "/1.0/storage-pools";
/// The collection of projects.
pub const PROJECTS: &str = "/1.0/projects";
/// The collection of trusted certificates.
pub const CERTIFICATES: &str = "/1.0/certificates";
/// The collection of cluster members.
pub const CLUSTER_MEMBERS: &str = "/1.0/cluster/members";
/// The collection of images.
pub const IMAGES: &str = "/1.0/images";
/// The collection of image aliases.
pub const IMAGE_ALIASES: &str = "/1.0/images/aliases";
/// The collection of operations.
pub const OPERATIONS: &str = "/1.0/operations";

/// The collection of a storage volume's snapshots.
pub fn volume_snapshots_path(volume_path: &str) -> String {
    format!("{volume_path}/snapshots")
}

/// `PUT <volume> {"restore": snapshot}`: the volume goes back to the snapshot.
pub fn restore_volume(volume_path: &str, snapshot: &str) -> Request {
    Request::put(volume_path, json!({ "restore": snapshot }))
}

/// Projects.
pub const PROJECT: Kind = Kind {
    noun: "Project",
    key: "name",
    writable: &["config", "description"],
    read_only: &["name", "used_by"],
    renamable: true,
};

/// Trusted certificates.
pub const CERTIFICATE: Kind = Kind {
    noun: "Certificate",
    key: "fingerprint",
    writable: &["name", "restricted", "projects", "type"],
    read_only: &["fingerprint", "certificate"],
    renamable: false,
};

/// Cluster members.
pub const CLUSTER_MEMBER: Kind = Kind {
    noun: "Cluster member",
    key: "server_name",
    writable: &["description", "failure_domain", "roles", "config", "groups"],
    read_only: &[
        "server_name",
        "url",
        "status",
        "message",
        "architecture",
        "database",
    ],
    renamable: false,
};

/// Images.
pub const IMAGE: Kind = Kind {
    noun: "Image",
    key: "fingerprint",
    writable: &[
        "properties",
        "public",
        "auto_update",
        "expires_at",
        "profiles",
    ],
    read_only: &[
        "fingerprint",
        "aliases",
        "size",
        "architecture",
        "type",
        "created_at",
        "uploaded_at",
        "last_used_at",
        "filename",
        "cached",
        "update_source",
    ],
    renamable: false,
};

/// How a save is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Only changed keys: nothing was removed from a map, so a merge is exact.
    Patch(Value),
    /// The whole writable object: something was removed, which a merge cannot express.
    Put(Value),
}

impl Update {
    /// The request that sends it to the object at `path`, with `If-Match` when an ETag is known.
    pub fn request(self, path: String, etag: Option<&str>) -> Request {
        match self {
            Update::Patch(body) => Request::patch(path, body),
            Update::Put(body) => Request::put(path, body),
        }
        .if_match(etag)
    }
}

/// What `save` must send to turn `loaded` into `current`, or `None` when nothing changed.
///
/// LXD's PATCH merges `config` and `devices` key by key and cannot remove a key, so a removal
/// falls back to a PUT of every writable field.
pub fn diff(
    loaded: &Map<String, Value>,
    current: &Map<String, Value>,
    writable: &[&str],
) -> Option<Update> {
    let mut patch = Map::new();
    let mut removed = false;
    for key in writable {
        let (before, after) = (loaded.get(*key), current.get(*key));
        if before == after {
            continue;
        }
        match (before, after) {
            (Some(Value::Object(b)), Some(Value::Object(a)))
                if *key == "config" || *key == "devices" =>
            {
                removed |= b.keys().any(|k| !a.contains_key(k));
                let changed: Map<String, Value> = a
                    .iter()
                    .filter(|(k, v)| b.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                patch.insert((*key).to_owned(), Value::Object(changed));
            }
            (_, Some(a)) => {
                patch.insert((*key).to_owned(), a.clone());
            }
            (_, None) => removed = true,
        }
    }
    if patch.is_empty() && !removed {
        return None;
    }
    if removed {
        let whole: Map<String, Value> = writable
            .iter()
            .filter_map(|k| current.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        return Some(Update::Put(Value::Object(whole)));
    }
    Some(Update::Patch(Value::Object(patch)))
}

/// The keys a plain listing names: the last segment of each URL, unescaped.
pub fn keys_of(urls: &Value) -> Vec<String> {
    urls.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|url| url.split('?').next()?.rsplit('/').next())
        .map(|key| {
            percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// The calls an object makes on itself, whatever API it lives under: implemented by the
/// instance and snapshot APIs and by [`Collection`], so a client of this crate can keep one
/// object state for all of them.
pub trait ObjectApi: Clone + Send + Sync {
    /// The fields a save may write.
    fn writable(&self) -> &'static [&'static str];

    /// Loads one object; `NotFound` when missing.
    fn get(&self, name: &str) -> impl Future<Output = Result<Loaded>> + Send;

    /// Saves changes with `If-Match`; `None` when LXD answered at once.
    fn save(
        &self,
        name: &str,
        update: Update,
        etag: Option<&str>,
    ) -> impl Future<Output = Result<Option<Operation>>> + Send;

    /// Deletes the object; `None` when LXD answered at once.
    fn delete(&self, name: &str) -> impl Future<Output = Result<Option<Operation>>> + Send;

    /// Renames the object; `None` when LXD answered at once.
    fn rename(
        &self,
        name: &str,
        new_name: &str,
    ) -> impl Future<Output = Result<Option<Operation>>> + Send;

    /// The ETag to save an object that was loaded without one (from a listing).
    fn current_etag(
        &self,
        name: &str,
        _loaded: &Map<String, Value>,
    ) -> impl Future<Output = Result<Option<String>>> + Send {
        async move { Ok(self.get(name).await?.etag) }
    }
}

impl ObjectApi for Collection {
    fn writable(&self) -> &'static [&'static str] {
        self.kind.writable
    }

    async fn get(&self, key: &str) -> Result<Loaded> {
        self.client
            .object(&Request::get(self.path(key)))
            .await
            .map_err(|e| e.naming_missing(|| self.client.missing(self.kind.noun, key)))
    }

    async fn save(
        &self,
        key: &str,
        update: Update,
        etag: Option<&str>,
    ) -> Result<Option<Operation>> {
        self.client
            .start(&update.request(self.path(key), etag))
            .await
    }

    async fn delete(&self, key: &str) -> Result<Option<Operation>> {
        self.client.start(&Request::delete(self.path(key))).await
    }

    async fn rename(&self, key: &str, new_key: &str) -> Result<Option<Operation>> {
        self.client
            .start(&Request::post(self.path(key), json!({ "name": new_key })))
            .await
    }
}

/// One collection: `base` is its path (`/1.0/profiles`, `/1.0/storage-pools/p/volumes/custom`).
#[derive(Debug, Clone)]
pub struct Collection {
    client: Client,
    kind: &'static Kind,
    base: String,
}

impl Collection {
    /// The collection at `base`.
    pub fn new(client: Client, kind: &'static Kind, base: impl Into<String>) -> Self {
        Collection {
            client,
            kind,
            base: base.into(),
        }
    }

    /// The path of one object.
    pub fn path(&self, key: &str) -> String {
        format!("{}/{}", self.base, segment(key))
    }

    /// The collection's own path.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The keys of every object, from a plain listing.
    pub async fn keys(&self) -> Result<Vec<String>> {
        Ok(keys_of(&self.client.get(&self.base).await?))
    }

    /// Every object, whole, in one request.
    pub async fn all(&self) -> Result<Vec<Map<String, Value>>> {
        self.client
            .objects(&Request::get(&self.base).query("recursion", "1"))
            .await
    }

    /// True when the object exists.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        found(self.get(key).await)
    }

    /// Creates an object from LXD's create body; LXD may answer with an operation.
    pub async fn create(&self, body: Value) -> Result<Option<Operation>> {
        self.client.start(&Request::post(&self.base, body)).await
    }

    /// GETs `<object>/<sub>` (a network's `state`, a pool's `resources`).
    pub async fn sub_resource(&self, key: &str, sub: &str) -> Result<Value> {
        self.client.get(&format!("{}/{sub}", self.path(key))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn unchanged_objects_send_nothing() {
        let a = obj(json!({"config": {"a": "1"}, "status": "Running"}));
        let mut b = a.clone();
        b.insert("status".into(), json!("Stopped"));
        assert_eq!(diff(&a, &b, PROFILE.writable), None);
    }

    #[test]
    fn changed_keys_are_patched_alone() {
        let a = obj(json!({"config": {"a": "1", "b": "2"}, "description": "x"}));
        let b = obj(json!({"config": {"a": "1", "b": "3", "c": "4"}, "description": "x"}));
        assert_eq!(
            diff(&a, &b, PROFILE.writable),
            Some(Update::Patch(json!({"config": {"b": "3", "c": "4"}})))
        );
    }

    #[test]
    fn removals_fall_back_to_a_whole_put() {
        let a =
            obj(json!({"config": {"a": "1"}, "devices": {}, "description": "d", "used_by": []}));
        let b = obj(json!({"config": {}, "devices": {}, "description": "d", "used_by": []}));
        assert_eq!(
            diff(&a, &b, PROFILE.writable),
            Some(Update::Put(
                json!({"config": {}, "devices": {}, "description": "d"})
            ))
        );
    }
}
