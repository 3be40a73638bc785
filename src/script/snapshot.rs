//! `i.snapshots` and `Snapshot`.

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

use super::api::{Api, RegisterInto};
use super::client::Client;
use super::errors::{RhaiResultOf, reject_change};
use super::held::{Held, Holdable, register_common};
use super::instance::{PublishArgs, publish, register_publish};
use super::options::Options;
use super::pending::{After, Pending, Settles, register_waitable, register_waitable_named};
use crate::lxd::image::PublishSource;
use crate::lxd::instance::Instances;
use crate::lxd::object::ObjectApi;
use crate::lxd::response::Loaded;
use crate::lxd::snapshot::{CreateSnapshot, Snapshots};

/// The snapshots of one instance.
#[derive(Debug, Clone)]
pub struct SnapshotManager {
    client: Client,
    api: Snapshots,
    instance: String,
}

impl SnapshotManager {
    /// The snapshots of `instance`.
    pub fn new(client: Client, instance: &str) -> Self {
        let api = Snapshots::new(client.lxd.clone(), instance);
        SnapshotManager {
            client,
            api,
            instance: instance.to_owned(),
        }
    }

    fn snapshot(&self, name: &str, loaded: Loaded) -> Snapshot {
        Snapshot::new(self.client.clone(), self.api.clone(), name, loaded)
    }

    fn get(&self, name: &str) -> RhaiResultOf<Snapshot> {
        let loaded = self.client.bridge.block_on(self.api.get(name))?;
        Ok(self.snapshot(name, loaded))
    }

    fn all(&self) -> RhaiResultOf<Array> {
        let items = self.client.bridge.block_on(self.api.all())?;
        Ok(items
            .into_iter()
            .map(|fields| {
                let name = short_name(
                    fields
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                );
                Dynamic::from(self.snapshot(&name, Loaded { fields, etag: None }))
            })
            .collect())
    }

    fn create(&self, opts: CreateSnapshot, wait: bool) -> RhaiResultOf<Snapshot> {
        let op = self.client.bridge.block_on(self.api.create(&opts))?;
        let name = opts
            .name
            .clone()
            .or_else(|| created_name(op.other.get("resources")))
            .unwrap_or_default();
        let mut snapshot = self.snapshot(&name, Loaded::default());
        snapshot.pending = Some(Pending::new(&self.client.lxd, &op, After::Reload));
        if wait {
            snapshot.join(None)?;
        }
        Ok(snapshot)
    }
}

/// `c1/snap0` → `snap0`.
fn short_name(full: &str) -> String {
    full.rsplit('/').next().unwrap_or(full).to_owned()
}

/// The snapshot name in an operation's resources (when LXD picked it).
fn created_name(resources: Option<&Value>) -> Option<String> {
    let urls = resources?.as_object()?;
    urls.values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .find(|u| u.contains("/snapshots/"))
        .map(short_name)
}

/// Marks snapshots.
#[derive(Debug, Clone)]
pub struct SnapshotKind;

impl Holdable for SnapshotKind {
    const TYPE_NAME: &'static str = "Snapshot";
    type Api = Snapshots;
}

/// One snapshot of an instance.
pub type Snapshot = Held<SnapshotKind>;

impl Snapshot {
    /// An attribute: its name and instance as held, the others as loaded.
    fn attribute(&mut self, key: &str) -> RhaiResultOf<Dynamic> {
        self.join(None)?;
        Ok(match key {
            "name" => self.name.clone().into(),
            "instance" => self.api.instance().into(),
            _ => self.field_now(key),
        })
    }

    fn restore(&mut self, wait: bool) -> RhaiResultOf<()> {
        self.join(None)?;
        let instances = Instances::new(self.client.lxd.clone(), None);
        let stateful = self
            .fields()
            .get("stateful")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let op = self.client.bridge.block_on(instances.restore(
            self.api.instance(),
            &self.name,
            stateful,
        ))?;
        self.follow(Some(op), wait, After::Nothing)
    }

    fn publish(&mut self, args: PublishArgs) -> RhaiResultOf<Dynamic> {
        self.join(None)?;
        let source = PublishSource::Snapshot {
            instance: self.api.instance().to_owned(),
            snapshot: self.name.clone(),
        };
        publish(&self.client, &mut self.pending, &source, args)
    }
}

/// Snapshot attributes (all read-only): what LXD and Incus keep of a snapshot, as Instance has
/// them.
const ATTRIBUTES: [&str; 15] = [
    "name",
    "created_at",
    "stateful",
    "expires_at",
    "description",
    "size",
    "instance",
    "architecture",
    "config",
    "devices",
    "ephemeral",
    "expanded_config",
    "expanded_devices",
    "last_used_at",
    "profiles",
];

/// Registers the snapshot manager and `Snapshot`.
pub fn register(api: &mut Api) {
    api.register_type_with_name::<SnapshotManager>("Snapshots");
    api.register_type_with_name::<Snapshot>("Snapshot");

    rhai::FuncRegistration::new("all")
        .with_comments(["/// Every snapshot of the instance, fully loaded, in one request."])
        .register_into(api, |m: &mut SnapshotManager| m.all());
    rhai::FuncRegistration::new("get")
        .with_comments(["/// Loads a snapshot; throws NotFound when missing."])
        .register_into(api, |m: &mut SnapshotManager, name: &str| m.get(name));
    rhai::FuncRegistration::new("exists")
        .with_comments(["/// True when the snapshot exists."])
        .register_into(api, |m: &mut SnapshotManager, name: &str| {
            m.client.bridge.block_on(m.api.exists(name))
        });
    let create = |name: &str, stateful: bool| CreateSnapshot {
        name: Some(name.to_owned()),
        stateful,
        expires_at: None,
    };
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Creates a stateless snapshot (does not wait)."])
        .register_into(api, move |m: &mut SnapshotManager, name: &str| {
            m.create(create(name, false), false)
        });
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Creates a snapshot, stateful (CRIU) or not (does not wait)."])
        .register_into(
            api,
            move |m: &mut SnapshotManager, name: &str, stateful: bool| {
                m.create(create(name, stateful), false)
            },
        );
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Creates a snapshot; waits when `wait` is true."])
        .register_into(
            api,
            move |m: &mut SnapshotManager, name: &str, stateful: bool, wait: bool| {
                m.create(create(name, stateful), wait)
            },
        );
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Creates a snapshot with options #{stateful, wait, expires_at}."])
        .register_into(api, |m: &mut SnapshotManager, name: &str, options: Map| {
            let o = Options::new(
                "snapshots.create",
                options,
                &["stateful", "wait", "expires_at"],
            )?;
            let opts = CreateSnapshot {
                name: Some(name.to_owned()),
                stateful: o.bool("stateful")?.unwrap_or(false),
                expires_at: o.string("expires_at")?,
            };
            m.create(opts, o.bool("wait")?.unwrap_or(false))
        });

    for key in ATTRIBUTES {
        rhai::FuncRegistration::new_getter(key)
            .with_comments([format!("/// The snapshot's `{key}`.")])
            .register_into(api, move |s: &mut Snapshot| s.attribute(key));
        rhai::FuncRegistration::new_setter(key)
            .with_comments([format!(
                "/// `{key}` is read-only: assigning it throws ReadOnly."
            )])
            .register_into(api, move |s: &mut Snapshot, v: Dynamic| {
                let hint = if key == "name" { "; use rename()" } else { "" };
                reject_change("Snapshot", key, hint, &s.attribute(key)?, &v)
            });
    }
    register_waitable_named(
        api,
        "rename",
        "Renames the snapshot",
        false,
        Snapshot::rename,
    );
    register_waitable(
        api,
        "delete",
        "Deletes the snapshot",
        false,
        Snapshot::delete,
    );
    register_waitable(
        api,
        "restore",
        "Restores the instance to this snapshot",
        false,
        Snapshot::restore,
    );
    register_common::<SnapshotKind>(api);
    register_publish(api, "Snapshot.publish", Snapshot::publish);
    super::register_display(api, |s: &Snapshot| {
        format!("Snapshot {}/{}", s.api.instance(), s.name)
    });
    super::register_display(api, |m: &SnapshotManager| {
        format!("Snapshots of {}", m.instance)
    });
}
