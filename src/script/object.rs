//! The scripted objects that share one shape: profiles, networks, storage pools
//! and volumes, projects, certificates and cluster members. One generic `Object<K>` and
//! `Manager<K>`; each kind is a marker type, so each is its own Rhai type (`Profile`, ...).

use std::marker::PhantomData;
use std::sync::Arc;

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

use super::api::{Api, RegisterInto};
use super::client::Client;
use super::convert::{dynamic_to_json, json_to_dynamic, object_to_map};
use super::errors::{RhaiResultOf, invalid_argument, reject_change};
use super::pending::{
    After, Pending, Settles, register_wait, register_waitable, register_waitable_named,
};
use crate::lxd::object::{self, Collection, Kind, diff};
use crate::lxd::response::{Loaded, Operation, RawObject};

/// A kind of object, as a marker type.
pub trait ObjectKind: std::fmt::Debug + Clone + Send + Sync + 'static {
    /// What scripts call an object of this kind (`Profile`).
    const TYPE_NAME: &'static str;
    /// What the kind is.
    const KIND: &'static Kind;
    /// The fields a table of such objects shows.
    const COLUMNS: &'static [&'static str];
}

macro_rules! kinds {
    ($($marker:ident => $name:literal, $kind:path, [$($column:literal),*]),* $(,)?) => {$(
        #[doc = concat!("Marks `", $name, "` objects.")]
        #[derive(Debug, Clone)]
        pub struct $marker;
        impl ObjectKind for $marker {
            const TYPE_NAME: &'static str = $name;
            const KIND: &'static Kind = &$kind;
            const COLUMNS: &'static [&'static str] = &[$($column),*];
        }
    )*};
}

kinds! {
    ProfileKind => "Profile", object::PROFILE, ["name", "description", "used_by"],
    NetworkKind => "Network", object::NETWORK, ["name", "type", "managed", "status"],
    StoragePoolKind => "StoragePool", object::STORAGE_POOL, ["name", "driver", "status"],
    StorageVolumeKind => "StorageVolume", object::STORAGE_VOLUME, ["name", "type", "content_type", "location"],
    ProjectKind => "Project", object::PROJECT, ["name", "description", "used_by"],
    CertificateKind => "Certificate", object::CERTIFICATE, ["name", "type", "fingerprint", "restricted"],
    ClusterMemberKind => "ClusterMember", object::CLUSTER_MEMBER, ["server_name", "status", "url", "roles"],
    ImageKind => "Image", object::IMAGE, ["fingerprint", "aliases", "type", "size", "architecture"],
    BackupKind => "Backup", crate::lxd::backup::BACKUP, ["name", "created_at", "expires_at", "instance_only"],
    StorageVolumeSnapshotKind => "StorageVolumeSnapshot", object::STORAGE_VOLUME_SNAPSHOT, ["name", "created_at", "expires_at", "description"],
}

/// A collection of objects of one kind.
#[derive(Debug, Clone)]
pub struct Manager<K> {
    pub(crate) client: Client,
    pub(crate) api: Collection,
    kind: PhantomData<K>,
}

impl<K: ObjectKind> Manager<K> {
    /// The collection at `base` (e.g. `/1.0/profiles`).
    pub fn new(client: Client, base: impl Into<String>) -> Self {
        let api = Collection::new(client.lxd.clone(), K::KIND, base);
        Manager {
            client,
            api,
            kind: PhantomData,
        }
    }

    fn object(&self, key: &str, loaded: Loaded) -> Object<K> {
        Object::new(self.client.clone(), self.api.clone(), key, loaded)
    }

    /// Loads one object; NotFound when missing.
    pub fn get(&self, key: &str) -> RhaiResultOf<Object<K>> {
        let loaded = self.client.bridge.block_on(self.api.get(key))?;
        Ok(self.object(key, loaded))
    }

    /// Every object, whole, in one request.
    pub fn all(&self) -> RhaiResultOf<Array> {
        let items = self.client.bridge.block_on(self.api.all())?;
        Ok(items
            .into_iter()
            .map(|fields| {
                // A volume snapshot's name carries its volume's (`vol/snap0`); no key has a `/`.
                let key = fields
                    .get(K::KIND.key)
                    .and_then(Value::as_str)
                    .and_then(|k| k.rsplit('/').next())
                    .unwrap_or_default()
                    .to_owned();
                Dynamic::from(self.object(&key, Loaded { fields, etag: None }))
            })
            .collect())
    }

    /// True when the object exists.
    pub fn exists(&self, key: &str) -> RhaiResultOf<bool> {
        self.client.bridge.block_on(self.api.exists(key))
    }

    /// Creates an object from LXD's body, waits for it, and loads it.
    pub fn create(&self, key: &str, body: Value) -> RhaiResultOf<Object<K>> {
        let op = self.client.bridge.block_on(self.api.create(body))?;
        self.settle(op)?;
        self.get(key)
    }

    /// Creates an object whose key the server may pick (`snap0`, `backup0`, ...): `key` when
    /// given, else the one key a listing shows that it did not before (LXD 5.0 does not say in
    /// the operation). Waits and loads it; with `wait` false and a known key it stays pending,
    /// joined by its next use.
    pub fn create_keyed(
        &self,
        call: &str,
        key: Option<String>,
        body: Value,
        wait: bool,
    ) -> RhaiResultOf<Object<K>> {
        let before = match key {
            Some(_) => Vec::new(),
            None => self.client.bridge.block_on(self.api.keys())?,
        };
        let op = self.client.bridge.block_on(self.api.create(body))?;
        if let (Some(op), Some(key), false) = (&op, &key, wait) {
            let mut object = self.object(key, Loaded::default());
            object.pending = Some(Pending::new(op, After::Reload));
            return Ok(object);
        }
        self.settle(op)?;
        let key = match key {
            Some(key) => key,
            None => self
                .client
                .bridge
                .block_on(self.api.keys())?
                .into_iter()
                .find(|k| !before.contains(k))
                .ok_or_else(|| invalid_argument(format!("{call}: the server made nothing new")))?,
        };
        self.get(&key)
    }

    /// Waits for an operation LXD may have answered with.
    pub fn settle(&self, op: Option<Operation>) -> RhaiResultOf<()> {
        if let Some(op) = op {
            self.client
                .bridge
                .block_on(self.client.lxd.wait_operation(op.id(), None))?;
        }
        Ok(())
    }
}

/// Whether `put` or `patch` was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// `put(map)`: the writable fields become the map (those it leaves out are reset).
    Whole,
    /// `patch(map)`: the map is merged into the writable fields.
    Merge,
}

impl Replace {
    /// The call's name: `put` or `patch`.
    pub fn verb(self) -> &'static str {
        match self {
            Replace::Whole => "put",
            Replace::Merge => "patch",
        }
    }
}

/// The update `put(map)` or `patch(map)` sends: the map itself, once every key is known to be
/// writable (a read-only or unknown key is refused with the writable ones named).
pub fn checked_update(
    call: &str,
    writable: &[&str],
    map: &Map,
    replace: Replace,
) -> RhaiResultOf<object::Update> {
    if let Some(bad) = map.keys().find(|k| !writable.contains(&k.as_str())) {
        return Err(invalid_argument(format!(
            "{call}: '{bad}' is not a writable field; the writable ones are: {}",
            writable.join(", ")
        )));
    }
    let body = dynamic_to_json(&Dynamic::from(map.clone()))
        .map_err(|e| invalid_argument(format!("{call}: {e}")))?;
    Ok(match replace {
        Replace::Whole => object::Update::Put(body),
        Replace::Merge => object::Update::Patch(body),
    })
}

/// Registers `put(map)`, `put(map, wait)`, `patch(map)` and `patch(map, wait)` (pylxd's
/// `Model.put`/`patch`): with If-Match, and the object reloaded once the change is made.
pub fn register_put_and_patch<T: rhai::Variant + Clone>(
    api: &mut Api,
    type_name: &str,
    replace: fn(&mut T, &Map, Replace, bool) -> RhaiResultOf<()>,
) {
    for (name, how, what) in [
        (
            "put",
            Replace::Whole,
            "pylxd's `put`: replaces the writable fields with the map (those it leaves out are reset)",
        ),
        (
            "patch",
            Replace::Merge,
            "pylxd's `patch`: merges the map into the writable fields",
        ),
    ] {
        rhai::FuncRegistration::new(name)
            .with_comments([format!(
                "/// {what}, with If-Match; waits and reloads the {type_name}."
            )])
            .register_into(api, move |t: &mut T, map: Map| replace(t, &map, how, true));
        rhai::FuncRegistration::new(name)
            .with_comments([format!(
                "/// {what}, with If-Match; waits (and reloads) when `wait` is true."
            )])
            .register_into(api, move |t: &mut T, map: Map, wait: bool| {
                replace(t, &map, how, wait)
            });
    }
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

/// One object: its fields as loaded, local edits, and a pending operation.
#[derive(Debug, Clone)]
pub struct Object<K> {
    pub(crate) client: Client,
    pub(crate) api: Collection,
    pub(crate) key: String,
    fields: Fields,
    etag: Option<String>,
    pending: Option<Pending>,
    kind: PhantomData<K>,
}

impl<K: ObjectKind> Settles for Object<K> {
    fn pending(&mut self) -> &mut Option<Pending> {
        &mut self.pending
    }

    fn owner(&self) -> &Client {
        &self.client
    }

    fn rename_to(&mut self, key: String) {
        self.key = key;
    }

    fn reload(&mut self) -> RhaiResultOf<()> {
        let loaded = self.client.bridge.block_on(self.api.get(&self.key))?;
        self.fields = Fields::new(loaded.fields);
        self.etag = loaded.etag;
        Ok(())
    }
}

impl<K: ObjectKind> Object<K> {
    /// Its fields as the script sees them now (local edits included).
    pub fn fields(&self) -> &serde_json::Map<String, Value> {
        self.fields.current()
    }

    /// An object as loaded from `api`.
    pub fn new(client: Client, api: Collection, key: &str, loaded: Loaded) -> Self {
        Object {
            client,
            api,
            key: key.to_owned(),
            fields: Fields::new(loaded.fields),
            etag: loaded.etag,
            pending: None,
            kind: PhantomData,
        }
    }

    /// A field, after joining any pending operation.
    pub fn field(&mut self, key: &str) -> RhaiResultOf<Dynamic> {
        self.join(None)?;
        Ok(self.fields.value(key))
    }

    fn set_field(&mut self, key: &str, value: &Dynamic) -> RhaiResultOf<()> {
        self.join(None)?;
        let json = dynamic_to_json(value)
            .map_err(|e| invalid_argument(format!("{}.{key}: {e}", K::TYPE_NAME)))?;
        self.fields.set(key, json);
        Ok(())
    }

    fn save(&mut self, wait: bool) -> RhaiResultOf<()> {
        self.join(None)?;
        let Some(update) = diff(
            self.fields.loaded(),
            self.fields.current(),
            K::KIND.writable,
        ) else {
            return Ok(());
        };
        self.send_update(update, wait)
    }

    fn replace(&mut self, map: &Map, replace: Replace, wait: bool) -> RhaiResultOf<()> {
        self.join(None)?;
        let call = format!("{}.{}", K::TYPE_NAME, replace.verb());
        let update = checked_update(&call, K::KIND.writable, map, replace)?;
        self.send_update(update, wait)
    }

    /// Sends a save, put or patch with If-Match, and reloads once it is made.
    fn send_update(&mut self, update: object::Update, wait: bool) -> RhaiResultOf<()> {
        if self.etag.is_none() {
            // Loaded by all(): take the ETag now (a later change on the server is then refused).
            self.etag = self.client.bridge.block_on(self.api.get(&self.key))?.etag;
        }
        let op =
            self.client
                .bridge
                .block_on(self.api.save(&self.key, update, self.etag.as_deref()))?;
        self.follow(op, wait, After::Reload)
    }

    fn delete(&mut self, wait: bool) -> RhaiResultOf<()> {
        self.join(None)?;
        let op = self.client.bridge.block_on(self.api.delete(&self.key))?;
        self.follow(op, wait, After::Deleted)
    }

    fn rename(&mut self, new_key: &str, wait: bool) -> RhaiResultOf<()> {
        self.join(None)?;
        let op = self
            .client
            .bridge
            .block_on(self.api.rename(&self.key, new_key))?;
        self.follow(op, wait, After::Renamed(new_key.to_owned()))
    }

    /// GETs a sub-resource of this object (`state`, `resources`).
    pub fn sub_resource(&mut self, sub: &str) -> RhaiResultOf<Dynamic> {
        self.join(None)?;
        let value = self
            .client
            .bridge
            .block_on(self.api.sub_resource(&self.key, sub))?;
        Ok(json_to_dynamic(&value))
    }
}

/// Registers `Manager<K>` (as `manager_name`) and `Object<K>` with their common methods.
pub fn register<K: ObjectKind>(api: &mut Api, manager_name: &str) {
    let kind = K::KIND;
    let type_name = K::TYPE_NAME;
    api.register_type_with_name::<Manager<K>>(manager_name);
    api.register_type_with_name::<Object<K>>(type_name);

    rhai::FuncRegistration::new("get")
        .with_comments([format!(
            "/// Loads a {type_name} by its {}; throws NotFound when missing.",
            kind.key
        )])
        .register_into(api, |m: &mut Manager<K>, key: &str| m.get(key));
    rhai::FuncRegistration::new("all")
        .with_comments([format!(
            "/// Every {type_name}, fully loaded, in one request."
        )])
        .register_into(api, |m: &mut Manager<K>| m.all());
    rhai::FuncRegistration::new("exists")
        .with_comments([format!("/// True when the {type_name} exists.")])
        .register_into(api, |m: &mut Manager<K>, key: &str| m.exists(key));

    for field in kind.writable {
        rhai::FuncRegistration::new_getter(*field)
            .with_comments([format!(
                "/// The {type_name}'s `{field}` (writable; save() writes it back)."
            )])
            .register_into(api, move |o: &mut Object<K>| o.field(field));
        rhai::FuncRegistration::new_setter(*field)
            .with_comments([format!("/// Sets `{field}`; save() writes it back.")])
            .register_into(api, move |o: &mut Object<K>, v: Dynamic| {
                o.set_field(field, &v)
            });
    }
    for field in kind.read_only {
        rhai::FuncRegistration::new_getter(*field)
            .with_comments([format!("/// The {type_name}'s `{field}` (read-only).")])
            .register_into(api, move |o: &mut Object<K>| -> RhaiResultOf<Dynamic> {
                if *field == kind.key {
                    o.join(None)?;
                    return Ok(o.key.clone().into());
                }
                o.field(field)
            });
        rhai::FuncRegistration::new_setter(*field)
            .with_comments([format!(
                "/// `{field}` is read-only: assigning it throws ReadOnly."
            )])
            .register_into(api, move |o: &mut Object<K>, v: Dynamic| {
                let hint = if *field == kind.key && kind.renamable {
                    "; use rename()"
                } else {
                    ""
                };
                reject_change(type_name, field, hint, &o.field(field)?, &v)
            });
    }
    rhai::FuncRegistration::new("to_map")
        .with_comments([format!(
            "/// The whole {type_name} as a map, unknown server fields included."
        )])
        .register_into(api, |o: &mut Object<K>| -> RhaiResultOf<Map> {
            o.join(None)?;
            Ok(object_to_map(o.fields.current()))
        });
    register_waitable(
        api,
        "save",
        "Writes changed fields back (only what changed, with If-Match)",
        true,
        Object::<K>::save,
    );
    register_put_and_patch(api, type_name, Object::<K>::replace);
    rhai::FuncRegistration::new("sync")
        .with_comments(["/// Reloads from the server, dropping unsaved local edits."])
        .register_into(api, |o: &mut Object<K>| -> RhaiResultOf<()> {
            o.join(None)?;
            o.reload()
        });
    let deletes = format!("Deletes the {type_name}");
    register_waitable(api, "delete", &deletes, true, Object::<K>::delete);
    if kind.renamable {
        let renames = format!("Renames the {type_name}");
        register_waitable_named(api, "rename", &renames, true, Object::<K>::rename);
    }
    register_wait(api, "wait", Object::<K>::join);
    super::register_display(api, |o: &Object<K>| format!("{} {}", K::TYPE_NAME, o.key));
    super::register_display(api, |m: &Manager<K>| {
        format!("{}s of {}", K::TYPE_NAME, m.client.lxd.endpoint())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
