//! The state a script holds of one server object — its fields as loaded, the script's edits,
//! its ETag and a pending operation — shared by `Instance`, `Snapshot` and the objects of
//! [`super::object`]: one [`Held`] type over the API the object lives under.

use std::sync::Arc;

use rhai::{Dynamic, Map};
use serde_json::Value;

use super::api::{Api, RegisterInto};
use super::client::Client;
use super::convert::{dynamic_to_json, json_to_dynamic};
use super::errors::{RhaiResultOf, invalid_argument};
use super::object::{Replace, checked_update, register_put_and_patch};
use super::pending::{After, Pending, Settles, register_waitable};
use crate::lxd::object::{ObjectApi, Update, diff};
use crate::lxd::response::{Loaded, RawObject};

/// A kind of object a script holds: its script type name and the API it lives under. Each
/// kind is a marker type, so each `Held<K>` is its own Rhai type (`Instance`, `Profile`, ...).
pub trait Holdable: std::fmt::Debug + Clone + Send + Sync + 'static {
    /// What scripts call an object of this kind (`Instance`, `Profile`).
    const TYPE_NAME: &'static str;
    /// The API its calls go through.
    type Api: ObjectApi + std::fmt::Debug;
}

/// One object held by a script: its fields as loaded, local edits, and a pending operation.
#[derive(Debug, Clone)]
pub struct Held<K: Holdable> {
    /// The client it was loaded through.
    pub(crate) client: Client,
    /// The API its own calls go through.
    pub(crate) api: K::Api,
    /// Its name (a key: an image's fingerprint, a member's server name).
    pub(crate) name: String,
    fields: Fields,
    etag: Option<String>,
    pub(crate) pending: Option<Pending>,
}

impl<K: Holdable> Settles for Held<K> {
    fn pending(&mut self) -> &mut Option<Pending> {
        &mut self.pending
    }

    fn owner(&self) -> &Client {
        &self.client
    }

    fn rename_to(&mut self, name: String) {
        self.name = name;
    }

    fn reload(&mut self) -> RhaiResultOf<()> {
        let loaded = self.client.bridge.block_on(self.api.get(&self.name))?;
        self.fields = Fields::new(loaded.fields);
        self.etag = loaded.etag;
        Ok(())
    }
}

impl<K: Holdable> Held<K> {
    /// An object as loaded (or known by name only, with empty fields and no ETag).
    pub fn new(client: Client, api: K::Api, name: &str, loaded: Loaded) -> Self {
        Held {
            etag: loaded.etag,
            ..Held::listed(client, api, name, Fields::new(loaded.fields))
        }
    }

    /// An object from a listing: no ETag (a save fetches one).
    pub fn listed(client: Client, api: K::Api, name: &str, fields: Fields) -> Self {
        Held {
            client,
            api,
            name: name.to_owned(),
            fields,
            etag: None,
            pending: None,
        }
    }

    /// Its fields as the script sees them now (local edits included).
    pub fn fields(&self) -> &serde_json::Map<String, Value> {
        self.fields.current()
    }

    /// A field, after joining any pending operation.
    pub fn field(&mut self, key: &str) -> RhaiResultOf<Dynamic> {
        self.join(None)?;
        Ok(self.fields.value(key))
    }

    /// A field as loaded or edited, without joining (for messages about it).
    pub fn field_now(&self, key: &str) -> Dynamic {
        self.fields.value(key)
    }

    /// Edits a field; `save()` writes it back.
    pub fn set_field(&mut self, key: &str, value: &Dynamic) -> RhaiResultOf<()> {
        self.join(None)?;
        let json = dynamic_to_json(value)
            .map_err(|e| invalid_argument(format!("{}.{key}: {e}", K::TYPE_NAME)))?;
        self.fields.set(key, json);
        Ok(())
    }

    /// Writes the edited writable fields back (only what changed, with If-Match).
    pub fn save(&mut self, wait: bool) -> RhaiResultOf<()> {
        self.join(None)?;
        let writable = self.api.writable();
        let Some(update) = diff(self.fields.loaded(), self.fields.current(), writable) else {
            return Ok(());
        };
        self.send_update(update, wait)
    }

    /// `put(map)` or `patch(map)`: the map's keys must all be writable. The server's own
    /// `volatile.*` config keys cannot be removed by a client, so a put keeps them.
    pub fn replace(&mut self, map: &Map, replace: Replace, wait: bool) -> RhaiResultOf<()> {
        self.join(None)?;
        let call = format!("{}.{}", K::TYPE_NAME, replace.verb());
        let mut update = checked_update(&call, self.api.writable(), map, replace)?;
        if let (Update::Put(Value::Object(body)), Some(Value::Object(loaded))) =
            (&mut update, self.fields.loaded().get("config"))
            && let Some(Value::Object(config)) = body.get_mut("config")
        {
            for (key, value) in loaded.iter().filter(|(k, _)| k.starts_with("volatile.")) {
                config.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        self.send_update(update, wait)
    }

    /// Sends a save, put or patch with If-Match, and reloads once it is made.
    fn send_update(&mut self, update: Update, wait: bool) -> RhaiResultOf<()> {
        if self.etag.is_none() {
            // Loaded by a listing: no ETag yet. Take the server's, if nothing changed there since.
            self.etag = self
                .client
                .bridge
                .block_on(self.api.current_etag(&self.name, self.fields.loaded()))?;
        }
        let op =
            self.client
                .bridge
                .block_on(self.api.save(&self.name, update, self.etag.as_deref()))?;
        self.follow(op, wait, After::Reload)
    }

    /// Deletes the object.
    pub fn delete(&mut self, wait: bool) -> RhaiResultOf<()> {
        self.join(None)?;
        let op = self.client.bridge.block_on(self.api.delete(&self.name))?;
        self.follow(op, wait, After::Deleted)
    }

    /// Renames the object; it is reloaded under its new name once renamed.
    pub fn rename(&mut self, new_name: &str, wait: bool) -> RhaiResultOf<()> {
        self.join(None)?;
        let op = self
            .client
            .bridge
            .block_on(self.api.rename(&self.name, new_name))?;
        self.follow(op, wait, After::Renamed(new_name.to_owned()))
    }

    /// Reloads from the server once any pending operation has ended, dropping local edits.
    pub fn sync(&mut self) -> RhaiResultOf<()> {
        self.join(None)?;
        self.reload()
    }

    /// The whole object as a map (after joining), unknown server fields included.
    fn joined_map(&mut self) -> RhaiResultOf<Map> {
        self.join(None)?;
        Ok(super::convert::object_to_map(self.fields.current()))
    }
}

/// Registers what every held object has: `wait()`, `wait(timeout)`, `to_map()`, `put` and
/// `patch`.
pub fn register_common<K: Holdable>(api: &mut Api) {
    let type_name = K::TYPE_NAME;
    rhai::FuncRegistration::new("wait")
        .with_comments(["/// Joins the pending operation of a call made without waiting."])
        .register_into(api, |h: &mut Held<K>| h.join(None));
    rhai::FuncRegistration::new("wait")
        .with_comments([
            "/// Joins the pending operation, throwing Timeout after `timeout` seconds.",
        ])
        .register_into(api, move |h: &mut Held<K>, timeout: Dynamic| {
            let call = format!("{type_name}.wait");
            h.join(Some(super::client::duration_arg(&call, &timeout)?))
        });
    rhai::FuncRegistration::new("to_map")
        .with_comments([format!(
            "/// The whole {type_name} as a map, unknown server fields included."
        )])
        .register_into(api, |h: &mut Held<K>| h.joined_map());
    register_put_and_patch(api, type_name, Held::<K>::replace);
}

/// Registers what objects with local edits have: `save()`, `save(wait)` and `sync()`.
pub fn register_editable<K: Holdable>(api: &mut Api) {
    register_waitable(
        api,
        "save",
        "Writes changed fields back (only what changed, with If-Match)",
        true,
        Held::<K>::save,
    );
    rhai::FuncRegistration::new("sync")
        .with_comments(["/// Reloads from the server, dropping unsaved local edits."])
        .register_into(api, |h: &mut Held<K>| h.sync());
}

/// An object's fields: as last loaded, shared by the copies of the object that Rhai makes
/// freely, and with the script's edits, which copy them on the first one. Fields from a big
/// listing stay the server's JSON text until first read.
#[derive(Debug, Clone)]
pub struct Fields {
    loaded: Arc<LoadedFields>,
    edited: Option<serde_json::Map<String, Value>>,
}

/// Fields as the server gave them: parsed, or JSON text parsed on first use.
#[derive(Debug)]
struct LoadedFields {
    raw: Option<RawObject>,
    parsed: std::sync::OnceLock<serde_json::Map<String, Value>>,
}

impl Fields {
    /// Fields as the server gave them, unedited.
    pub fn new(loaded: serde_json::Map<String, Value>) -> Self {
        let parsed = std::sync::OnceLock::new();
        let _ = parsed.set(loaded);
        Fields {
            loaded: Arc::new(LoadedFields { raw: None, parsed }),
            edited: None,
        }
    }

    /// Fields as a listing gave them, parsed when first read (an object that is not a JSON
    /// object reads as empty).
    pub fn unparsed(raw: RawObject) -> Self {
        Fields {
            loaded: Arc::new(LoadedFields {
                raw: Some(raw),
                parsed: std::sync::OnceLock::new(),
            }),
            edited: None,
        }
    }

    /// As the server last gave them.
    pub fn loaded(&self) -> &serde_json::Map<String, Value> {
        let loaded = &self.loaded;
        loaded.parsed.get_or_init(|| {
            loaded
                .raw
                .as_ref()
                .and_then(|raw| serde_json::from_str(raw.get()).ok())
                .unwrap_or_default()
        })
    }

    /// As the script sees them now (its edits included).
    pub fn current(&self) -> &serde_json::Map<String, Value> {
        match &self.edited {
            Some(edited) => edited,
            None => self.loaded(),
        }
    }

    /// One field as the script sees it now, as a script value (`()` when absent).
    pub fn value(&self, key: &str) -> Dynamic {
        self.current()
            .get(key)
            .map_or(Dynamic::UNIT, json_to_dynamic)
    }

    /// Edits one field.
    pub fn set(&mut self, key: &str, value: Value) {
        if self.edited.is_none() {
            self.edited = Some(self.loaded().clone());
        }
        if let Some(edited) = &mut self.edited {
            edited.insert(key.to_owned(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lxd::fake::{FakeAnswer, FakeLxd, FakeRequest, operation};
    use crate::lxd::object::{Collection, NETWORK, NETWORKS};
    use crate::lxd::snapshot::Snapshots;
    use crate::lxd::transport::TransportOptions;
    use crate::script::object::NetworkKind;
    use crate::script::runtime::{Bridge, Interrupt};
    use crate::script::snapshot::SnapshotKind;
    use serde_json::json;
    use std::sync::Mutex;

    /// A script client of `fake`, on its own runtime (kept alive by the caller).
    fn client_of(fake: &FakeLxd) -> (tokio::runtime::Runtime, Client) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let bridge = Bridge::new(runtime.handle().clone(), Interrupt::default());
        let lxd = {
            let _entered = runtime.enter();
            fake.client(TransportOptions::default())
        };
        (runtime, Client::over(lxd, bridge))
    }

    fn object(value: Value) -> serde_json::Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        }
    }

    /// A put replaces the writable fields but keeps the server's `volatile.*` config keys (a
    /// client cannot remove them), then reloads what the server now has; an object of a generic
    /// collection does so as an instance does.
    #[test]
    fn a_put_keeps_the_servers_volatile_keys_and_reloads() {
        let put: Arc<Mutex<Option<Value>>> = Arc::default();
        let seen_put = put.clone();
        let fake = FakeLxd::new(move |req: &FakeRequest| match req.method.as_str() {
            "PUT" => {
                *seen_put.lock().expect("lock") = Some(req.json());
                FakeAnswer::sync(json!({}))
            }
            _ => FakeAnswer::sync(json!({"name": "n", "config": {"c": "d", "volatile.k": "1"}})),
        });
        let (_runtime, client) = client_of(&fake);
        let api = Collection::new(client.lxd.clone(), &NETWORK, NETWORKS);
        let loaded = Loaded {
            fields: object(json!({"name": "n", "config": {"a": "b", "volatile.k": "1"}})),
            etag: Some("e1".into()),
        };
        let mut network = Held::<NetworkKind>::new(client, api, "n", loaded);
        let mut config = Map::new();
        config.insert("c".into(), "d".into());
        let mut body = Map::new();
        body.insert("config".into(), config.into());
        network.replace(&body, Replace::Whole, true).expect("put");
        let sent = put.lock().expect("lock").clone().expect("a PUT");
        assert_eq!(sent, json!({"config": {"c": "d", "volatile.k": "1"}}));
        assert_eq!(
            fake.seen(),
            ["PUT /1.0/networks/n", "GET /1.0/networks/n"],
            "the put, then the reload"
        );
        assert_eq!(network.fields()["config"]["c"], "d");
    }

    /// A rename made without waiting stays pending; the object's next use joins it and reloads
    /// the object under its new name.
    #[test]
    fn a_pending_rename_is_joined_by_the_next_use() {
        let fake = FakeLxd::new(|req: &FakeRequest| match req.method.as_str() {
            "POST" => FakeAnswer::started(operation("op1", 103, json!({}), "")),
            _ if req.path.starts_with("/1.0/operations/op1/wait") => {
                FakeAnswer::sync(operation("op1", 200, json!({}), ""))
            }
            _ => FakeAnswer::sync(json!({"name": "s1", "stateful": false})),
        });
        let (_runtime, client) = client_of(&fake);
        let api = Snapshots::new(client.lxd.clone(), "c1");
        let mut snapshot = Held::<SnapshotKind>::new(client, api, "s0", Loaded::default());
        snapshot.rename("s1", false).expect("rename");
        assert_eq!(snapshot.name, "s0", "not renamed before the operation ends");
        assert_eq!(
            snapshot.field("stateful").expect("field").as_bool(),
            Ok(false)
        );
        assert_eq!(snapshot.name, "s1");
        let seen = fake.seen();
        assert_eq!(seen[0], "POST /1.0/instances/c1/snapshots/s0");
        assert!(
            seen[1].starts_with("GET /1.0/operations/op1/wait"),
            "{seen:?}"
        );
        assert_eq!(seen[2], "GET /1.0/instances/c1/snapshots/s1");
    }

    #[test]
    fn an_edit_copies_the_fields_and_stays_on_its_copy() {
        let loaded = json!({"description": "a", "config": {"k": "v"}});
        let Value::Object(loaded) = loaded else {
            unreachable!("an object literal")
        };
        let original = Fields::new(loaded.clone());
        let mut copy = original.clone();
        copy.set("description", json!("b"));
        assert_eq!(copy.current()["description"], json!("b"));
        assert_eq!(copy.loaded(), &loaded);
        assert_eq!(original.current(), &loaded);
        assert!(Arc::ptr_eq(&original.loaded, &copy.loaded));
    }
}
