//! The scripted objects that share one shape: profiles, networks, storage pools
//! and volumes, projects, certificates and cluster members. One generic `Object<K>` and
//! `Manager<K>`; each kind is a marker type, so each is its own Rhai type (`Profile`, ...).

use std::marker::PhantomData;

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

use super::api::{Api, RegisterInto};
use super::client::Client;
use super::convert::{dynamic_to_json, json_to_dynamic};
use super::errors::{RhaiResultOf, invalid_argument, reject_change};
use super::held::{Held, Holdable, register_common, register_editable};
use super::pending::{After, Pending, Settles, register_waitable, register_waitable_named};
use crate::lxd::object::{self, Collection, Kind, ObjectApi};
use crate::lxd::response::{Loaded, Operation};

/// A kind of object of one generic collection, as a marker type.
pub trait ObjectKind: Holdable<Api = Collection> {
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
        impl Holdable for $marker {
            const TYPE_NAME: &'static str = $name;
            type Api = Collection;
        }
        impl ObjectKind for $marker {
            const KIND: &'static Kind = &$kind;
            const COLUMNS: &'static [&'static str] = &[$($column),*];
        }
    )*};
}

kinds! {
    ProfileKind => "Profile", object::PROFILE, ["name", "description", "used_by"],
    NetworkKind => "Network", object::NETWORK, ["name", "type", "managed", "status"],
    NetworkForwardKind => "NetworkForward", object::NETWORK_FORWARD, ["listen_address", "description", "ports"],
    StoragePoolKind => "StoragePool", object::STORAGE_POOL, ["name", "driver", "status"],
    StorageVolumeKind => "StorageVolume", object::STORAGE_VOLUME, ["name", "type", "content_type", "location"],
    ProjectKind => "Project", object::PROJECT, ["name", "description", "used_by"],
    CertificateKind => "Certificate", object::CERTIFICATE, ["name", "type", "fingerprint", "restricted"],
    ClusterMemberKind => "ClusterMember", object::CLUSTER_MEMBER, ["server_name", "status", "url", "roles"],
    ImageKind => "Image", object::IMAGE, ["fingerprint", "aliases", "type", "size", "architecture"],
    BackupKind => "Backup", crate::lxd::backup::BACKUP, ["name", "created_at", "expires_at", "instance_only"],
    StorageVolumeSnapshotKind => "StorageVolumeSnapshot", object::STORAGE_VOLUME_SNAPSHOT, ["name", "created_at", "expires_at", "description"],
}

/// One object of a generic collection (`Profile`, `Network`, ...).
pub type Object<K> = Held<K>;

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
        Held::new(self.client.clone(), self.api.clone(), key, loaded)
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
            object.pending = Some(Pending::new(&self.client.lxd, op, After::Reload));
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

impl<K: ObjectKind> Held<K> {
    /// GETs a sub-resource of this object (`state`, `resources`).
    pub fn sub_resource(&mut self, sub: &str) -> RhaiResultOf<Dynamic> {
        self.join(None)?;
        let value = self
            .client
            .bridge
            .block_on(self.api.sub_resource(&self.name, sub))?;
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
                    return Ok(o.name.clone().into());
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
    register_common::<K>(api);
    register_editable::<K>(api);
    let deletes = format!("Deletes the {type_name}");
    register_waitable(api, "delete", &deletes, true, Object::<K>::delete);
    if kind.renamable {
        let renames = format!("Renames the {type_name}");
        register_waitable_named(api, "rename", &renames, true, Object::<K>::rename);
    }
    super::register_display(api, |o: &Object<K>| format!("{} {}", K::TYPE_NAME, o.name));
    super::register_display(api, |m: &Manager<K>| {
        format!("{}s of {}", K::TYPE_NAME, m.client.lxd.endpoint())
    });
}
