//! `client.instances` (and `containers`, `virtual_machines`) and `Instance`.

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

use super::api::{Api, RegisterInto};
use super::client::Client;
use super::convert::{json_to_dynamic, map_to_object};
use super::errors::{RhaiResultOf, invalid_argument, reject_change};
use super::files::FileManager;
use super::held::{Fields, Held, Holdable, register_common, register_editable};
use super::options::Options;
use super::pending::{After, Pending, Settles, register_waitable, register_waitable_named};
use super::progress::operation_progress;
use super::snapshot::SnapshotManager;
use crate::lxd::image::{Publish, PublishSource};
use crate::lxd::instance::{
    InstanceType, Instances, Listing, STATE_FIELDS, StateAction, StateChange, StateFields, Watched,
};
use crate::lxd::migration::{self, MigrateOptions};
use crate::lxd::response::Operation;
use crate::lxd::response::{Loaded, top_level_string};

/// A manager of instances (all, or one type).
#[derive(Debug, Clone)]
pub struct InstanceManager {
    client: Client,
    api: Instances,
}

impl InstanceManager {
    /// The manager of `client`'s instances, filtered by `kind`.
    pub fn new(client: Client, kind: Option<InstanceType>) -> Self {
        let api = Instances::new(client.lxd.clone(), kind);
        InstanceManager { client, api }
    }

    fn get(&self, name: &str) -> RhaiResultOf<Instance> {
        let loaded = self.client.bridge.block_on(self.api.get(name))?;
        Ok(Instance::new(
            self.client.clone(),
            self.api.clone(),
            name,
            loaded,
        ))
    }

    fn all(&self, listing: &Listing) -> RhaiResultOf<Array> {
        let items = self.client.bridge.block_on(self.api.all(listing))?;
        Ok(items
            .into_iter()
            .map(|raw| {
                let name = top_level_string(&raw, "name").unwrap_or_default();
                // A list carries no ETag: a save then sends no If-Match (a sync() fetches one).
                Dynamic::from(Instance::listed(
                    self.client.clone(),
                    self.api.clone(),
                    &name,
                    Fields::unparsed(raw),
                ))
            })
            .collect())
    }

    fn create(&self, config: Map, wait: bool, target: Option<String>) -> RhaiResultOf<Instance> {
        let body = Value::Object(
            map_to_object(&config)
                .map_err(|e| invalid_argument(format!("instances.create: {e}")))?,
        );
        let op = self
            .client
            .bridge
            .block_on(self.api.create(body.clone(), target.as_deref()))?;
        let watched = Watched::create(&body, &op);
        let name = config
            .get("name")
            .and_then(|n| n.clone().into_string().ok());
        self.follow_created(op, name, wait, watched)
    }

    /// The client it lists and creates with.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The instance an operation creates (a create, an import from a backup): waited for, with
    /// the server's progress, and loaded; or left pending when `wait` is false. Its name is
    /// `name`, else the one the server picked; a failure is explained as `watched` says.
    pub(crate) fn follow_created(
        &self,
        op: Operation,
        name: Option<String>,
        wait: bool,
        watched: Watched,
    ) -> RhaiResultOf<Instance> {
        let name = name.or_else(|| created_name(&op)).ok_or_else(|| {
            invalid_argument("instances.create: the server did not say which name it picked")
        })?;
        let mut fields = serde_json::Map::new();
        fields.insert("name".into(), name.clone().into());
        let loaded = Loaded { fields, etag: None };
        let mut instance = Instance::new(self.client.clone(), self.api.clone(), &name, loaded);
        if wait {
            // Waited here (not through the pending slot) to show the server's progress.
            let progress = operation_progress(&self.client, &format!("create {name}"));
            self.client.bridge.block_on(async {
                let waited = self
                    .client
                    .lxd
                    .wait_operation_reporting(op.id(), None, progress)
                    .await;
                match waited {
                    Err(failure) => Err(self.api.explain_failure(&watched, failure).await),
                    ok => ok,
                }
            })?;
            instance.reload()?;
        } else {
            instance.pending = Some(Pending::watched(
                &self.client.lxd,
                &op,
                After::Reload,
                watched,
            ));
        }
        Ok(instance)
    }
}

/// The listing that `all(#{recursion, fields})` asks for.
fn listing_options(client: &Client, options: Map) -> RhaiResultOf<Listing> {
    let o = Options::new("instances.all", options, &["recursion", "fields"])?;
    let fields = o.strings("fields")?;
    let state = match (o.int("recursion")?, fields) {
        (None | Some(1), None) => None,
        (None | Some(2), Some(fields)) => {
            let mut named = Vec::new();
            for field in fields {
                let full = if field.starts_with("state.") {
                    field
                } else {
                    format!("state.{field}")
                };
                if !STATE_FIELDS.contains(&full.as_str()) {
                    return Err(invalid_argument(format!(
                        "instances.all: unknown state field '{full}'; expected some of: {}",
                        STATE_FIELDS.join(", ")
                    )));
                }
                named.push(full);
            }
            Some(StateFields::Only(named))
        }
        (Some(2), None) => Some(StateFields::All),
        (Some(1), Some(_)) => {
            return Err(invalid_argument(
                "instances.all: fields select parts of the state, which only recursion 2 brings; drop recursion or make it 2",
            ));
        }
        (Some(other), _) => {
            return Err(invalid_argument(format!(
                "instances.all: recursion must be 1 or 2, not {other}"
            )));
        }
    };
    Ok(Listing {
        state,
        selective: client.has_api_extension("instances_state_selective_recursion"),
    })
}

/// The instance name an operation's resources name (when LXD picked it).
pub(crate) fn created_name(op: &Operation) -> Option<String> {
    let resources = op.other.get("resources")?;
    let url = resources
        .get("instances")
        .or_else(|| resources.get("containers"))?
        .as_array()?
        .first()?
        .as_str()?;
    url.rsplit('/').next().map(str::to_owned)
}

/// Marks instances.
#[derive(Debug, Clone)]
pub struct InstanceKind;

impl Holdable for InstanceKind {
    const TYPE_NAME: &'static str = "Instance";
    type Api = Instances;
}

/// One instance: its fields as loaded, local edits, and a pending operation.
pub type Instance = Held<InstanceKind>;

/// Arguments of the state changes (`start`, `stop`, ...), with pylxd's defaults.
struct StateArgs {
    timeout: i64,
    force: bool,
    wait: bool,
    stateful: bool,
}

impl Default for StateArgs {
    fn default() -> Self {
        StateArgs {
            timeout: 30,
            force: true,
            wait: false,
            stateful: false,
        }
    }
}

impl StateArgs {
    fn from_map(call: &str, map: Map) -> RhaiResultOf<Self> {
        let o = Options::new(call, map, &["timeout", "force", "wait", "stateful"])?;
        let d = StateArgs::default();
        Ok(StateArgs {
            timeout: o.int("timeout")?.unwrap_or(d.timeout),
            force: o.bool("force")?.unwrap_or(d.force),
            wait: o.bool("wait")?.unwrap_or(d.wait),
            stateful: o.bool("stateful")?.unwrap_or(d.stateful),
        })
    }
}

impl Instance {
    /// Joins the pending operation, if any (before any call that needs the instance settled).
    pub(crate) fn join_pending(&mut self) -> RhaiResultOf<()> {
        self.join(None)
    }

    fn change_state(&mut self, action: StateAction, args: StateArgs) -> RhaiResultOf<()> {
        self.join(None)?;
        let change = StateChange {
            action,
            timeout: args.timeout,
            force: args.force,
            stateful: args.stateful,
        };
        let op = self
            .client
            .bridge
            .block_on(self.api.change_state(&self.name, &change))?;
        let pending = if action == StateAction::Start {
            let name = self.name.clone();
            Pending::watched(
                &self.client.lxd,
                &op,
                After::Reload,
                Watched::Start { name },
            )
        } else {
            Pending::new(&self.client.lxd, &op, After::Reload)
        };
        self.follow_pending(pending, args.wait)
    }

    /// Deletes the instance; `force` stops it first unless it is stopped.
    fn delete_stopping(&mut self, wait: bool, force: bool) -> RhaiResultOf<()> {
        self.join(None)?;
        if force && self.fields().get("status").and_then(Value::as_str) != Some("Stopped") {
            self.change_state(
                StateAction::Stop,
                StateArgs {
                    wait: true,
                    ..StateArgs::default()
                },
            )?;
        }
        self.delete(wait)
    }

    fn restore_snapshot(&mut self, snapshot: &str, wait: bool, stateful: bool) -> RhaiResultOf<()> {
        self.join(None)?;
        let op = self
            .client
            .bridge
            .block_on(self.api.restore(&self.name, snapshot, stateful))?;
        self.follow(Some(op), wait, After::Reload)
    }

    /// The runtime state: the one a `recursion: 2` listing brought, until the instance reloads
    /// or `refresh` asks for the server's current one.
    fn state(&mut self, refresh: bool) -> RhaiResultOf<Dynamic> {
        self.join(None)?;
        if !refresh && let Some(listed) = self.fields().get("state") {
            return Ok(json_to_dynamic(listed));
        }
        let state = self.client.bridge.block_on(self.api.state(&self.name))?;
        Ok(json_to_dynamic(&state))
    }

    fn publish(&mut self, args: PublishArgs) -> RhaiResultOf<Dynamic> {
        self.join(None)?;
        let source = PublishSource::Instance(self.name.clone());
        publish(&self.client, &mut self.pending, &source, args)
    }

    /// Moves the instance to `dest` (another server, or a member of the same cluster with
    /// `target`) and returns it there. The source is removed only once the destination has it.
    fn migrate(&mut self, dest: &Client, opts: MigrateOptions) -> RhaiResultOf<Instance> {
        self.join(None)?;
        let fingerprint = |c: &Client| {
            c.host_info()
                .pointer("/environment/certificate_fingerprint")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let same_server =
            fingerprint(&self.client).is_some() && fingerprint(&self.client) == fingerprint(dest);
        let new_name = match (&opts.target, same_server) {
            (Some(target), true) => self.client.bridge.block_on(migration::move_within_cluster(
                &self.client.lxd,
                &self.name,
                target,
                &opts,
            ))?,
            (None, true) => {
                return Err(invalid_argument(
                    "Instance.migrate: the destination is this same server; give a cluster member as target, or use rename()",
                ));
            }
            _ => self.client.bridge.block_on(migration::migrate(
                &self.client.lxd,
                self.client.host_info(),
                &dest.lxd,
                dest.host_info(),
                &self.name,
                &opts,
                operation_progress(dest, &format!("migrate {}", self.name)),
            ))?,
        };
        InstanceManager::new(dest.clone(), None).get(&new_name)
    }

    fn describe(&self) -> String {
        let text = |k: &str| {
            self.fields()
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let mut s = format!("Instance {}", self.name);
        for part in [text("status"), text("type")] {
            if !part.is_empty() {
                s.push(' ');
                s.push_str(part);
            }
        }
        let location = text("location");
        if !location.is_empty() && location != "none" {
            s.push_str(" @");
            s.push_str(location);
        }
        s
    }
}

/// Arguments of `publish`, shared by instances and snapshots.
pub(crate) struct PublishArgs {
    pub(crate) wait: bool,
    pub(crate) options: Publish,
}

impl PublishArgs {
    pub(crate) fn positional(public: bool, wait: bool) -> Self {
        PublishArgs {
            wait,
            options: Publish {
                public,
                ..Publish::default()
            },
        }
    }

    pub(crate) fn from_map(call: &str, map: Map) -> RhaiResultOf<Self> {
        let o = Options::new(
            call,
            map,
            &[
                "public",
                "wait",
                "aliases",
                "properties",
                "compression_algorithm",
            ],
        )?;
        let properties = match o.map("properties")? {
            Some(m) => map_to_object(&m).map_err(|e| invalid_argument(format!("{call}: {e}")))?,
            None => serde_json::Map::new(),
        };
        Ok(PublishArgs {
            wait: o.bool("wait")?.unwrap_or(false),
            options: Publish {
                public: o.bool("public")?.unwrap_or(false),
                aliases: o.strings("aliases")?.unwrap_or_default(),
                properties,
                compression_algorithm: o.string("compression_algorithm")?,
            },
        })
    }
}

/// Registers `publish` in its four forms: `()`, `(public)`, `(public, wait)`, `(#{...})`.
pub(crate) fn register_publish<T: rhai::Variant + Clone>(
    api: &mut Api,
    call: &'static str,
    publish: fn(&mut T, PublishArgs) -> RhaiResultOf<Dynamic>,
) {
    rhai::FuncRegistration::new("publish")
        .with_comments([
            "/// Publishes as a private image (does not wait; an instance must be stopped).",
        ])
        .register_into(api, move |t: &mut T| {
            publish(t, PublishArgs::positional(false, false))
        });
    rhai::FuncRegistration::new("publish")
        .with_comments(["/// Publishes as an image, public or not (does not wait)."])
        .register_into(api, move |t: &mut T, public: bool| {
            publish(t, PublishArgs::positional(public, false))
        });
    rhai::FuncRegistration::new("publish")
        .with_comments(["/// Publishes as an image; returns the Image when `wait` is true."])
        .register_into(api, move |t: &mut T, public: bool, wait: bool| {
            publish(t, PublishArgs::positional(public, wait))
        });
    rhai::FuncRegistration::new("publish")
        .with_comments(["/// Publishes with options #{public, wait, aliases, properties, compression_algorithm}."])
        .register_into(api, move |t: &mut T, options: Map| {
            publish(t, PublishArgs::from_map(call, options)?)
        });
}

/// Publishes `source`; returns the Image when waited, else `()` with the operation left pending.
pub(crate) fn publish(
    client: &Client,
    pending: &mut Option<Pending>,
    source: &PublishSource,
    args: PublishArgs,
) -> RhaiResultOf<Dynamic> {
    let images = crate::lxd::image::Images::new(client.lxd.clone());
    let op = client
        .bridge
        .block_on(images.publish(source, &args.options))?;
    if !args.wait {
        *pending = Some(Pending::new(&client.lxd, &op, After::Nothing));
        return Ok(Dynamic::UNIT);
    }
    let done = client.bridge.block_on(client.lxd.wait_operation_reporting(
        op.id(),
        None,
        operation_progress(client, "publish"),
    ))?;
    let fingerprint = done
        .metadata()
        .get("fingerprint")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_argument("publish: LXD did not return the image fingerprint"))?;
    Ok(Dynamic::from(super::images::load(client, fingerprint)?))
}

/// The writable attributes.
const WRITABLE: [&str; 6] = crate::lxd::instance::WRITABLE;
/// The read-only attributes, with the hint a failed assignment gives.
const READ_ONLY: [(&str, &str); 11] = [
    ("name", "; use rename()"),
    ("status", "; use start(), stop(), freeze() or unfreeze()"),
    ("status_code", ""),
    ("created_at", ""),
    ("last_used_at", ""),
    ("location", "; use migrate() with a target"),
    ("type", ""),
    ("stateful", ""),
    ("expanded_config", "; edit config instead"),
    ("expanded_devices", "; edit devices instead"),
    ("project", ""),
];

/// Registers the instance managers and `Instance`.
pub fn register(api: &mut Api) {
    api.register_type_with_name::<InstanceManager>("Instances");
    api.register_type_with_name::<Instance>("Instance");

    rhai::FuncRegistration::new("exists")
        .with_comments([
            "/// True when an instance of this name (and of this manager's type) exists.",
        ])
        .register_into(api, |m: &mut InstanceManager, name: &str| {
            m.client.bridge.block_on(m.api.exists(name))
        });
    rhai::FuncRegistration::new("get")
        .with_comments(["/// Loads an instance; throws NotFound when missing."])
        .register_into(api, |m: &mut InstanceManager, name: &str| m.get(name));
    rhai::FuncRegistration::new("all")
        .with_comments(["/// Every instance, fully loaded, in one request."])
        .register_into(api, |m: &mut InstanceManager| m.all(&Listing::default()));
    rhai::FuncRegistration::new("all")
        .with_comments(["/// pylxd's `all(recursion, fields)`: every instance in one request, with options #{recursion: 1 or 2 (each with its state, snapshots and backups, so state() needs no request), fields: [\"state.disk\", \"state.network\"] (recursion 2 with only these costly parts of the state, where the server can; all of it where it cannot)}."])
        .register_into(api, |m: &mut InstanceManager, options: Map| {
            let listing = listing_options(&m.client, options)?;
            m.all(&listing)
        });
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Creates an instance from LXD's create body (name, source, config, devices, profiles, ...); does not wait."])
        .register_into(api, |m: &mut InstanceManager, config: Map| {
            m.create(config, false, None)
        });
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Creates an instance; waits when `wait` is true."])
        .register_into(api, |m: &mut InstanceManager, config: Map, wait: bool| {
            m.create(config, wait, None)
        });
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Creates an instance on a cluster member (`target`)."])
        .register_into(
            api,
            |m: &mut InstanceManager, config: Map, wait: bool, target: &str| {
                m.create(config, wait, Some(target.to_owned()))
            },
        );
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Creates an instance with options #{wait, target}."])
        .register_into(api, |m: &mut InstanceManager, config: Map, options: Map| {
            let o = Options::new("instances.create", options, &["wait", "target"])?;
            m.create(
                config,
                o.bool("wait")?.unwrap_or(false),
                o.string("target")?,
            )
        });

    for key in WRITABLE {
        rhai::FuncRegistration::new_getter(key)
            .with_comments([format!(
                "/// The instance's `{key}` (writable; save() writes it back)."
            )])
            .register_into(api, move |i: &mut Instance| i.field(key));
        rhai::FuncRegistration::new_setter(key)
            .with_comments([format!("/// Sets `{key}`; save() writes it back.")])
            .register_into(api, move |i: &mut Instance, v: Dynamic| {
                i.set_field(key, &v)
            });
    }
    for (key, hint) in READ_ONLY {
        rhai::FuncRegistration::new_getter(key)
            .with_comments([format!("/// The instance's `{key}` (read-only).")])
            .register_into(api, move |i: &mut Instance| {
                if key == "name" {
                    i.join(None)?;
                    return Ok(Dynamic::from(i.name.clone()));
                }
                i.field(key)
            });
        rhai::FuncRegistration::new_setter(key)
            .with_comments([format!(
                "/// `{key}` is read-only: assigning it throws ReadOnly."
            )])
            .register_into(api, move |i: &mut Instance, v: Dynamic| {
                let current = if key == "name" {
                    Dynamic::from(i.name.clone())
                } else {
                    i.field_now(key)
                };
                reject_change("Instance", key, hint, &current, &v)
            });
    }

    register_common::<InstanceKind>(api);
    register_editable::<InstanceKind>(api);

    register_waitable(
        api,
        "delete",
        "Deletes the instance",
        false,
        |i: &mut Instance, wait| i.delete(wait),
    );
    rhai::FuncRegistration::new("delete")
        .with_comments([
            "/// Deletes with options #{wait, force}; `force` stops a running instance first.",
        ])
        .register_into(api, |i: &mut Instance, options: Map| {
            let o = Options::new("Instance.delete", options, &["wait", "force"])?;
            i.delete_stopping(
                o.bool("wait")?.unwrap_or(false),
                o.bool("force")?.unwrap_or(false),
            )
        });
    register_waitable_named(
        api,
        "rename",
        "Renames the (stopped) instance",
        false,
        Instance::rename,
    );

    for action in StateAction::ALL {
        let name = action.as_str();
        rhai::FuncRegistration::new(name)
            .with_comments([format!(
                "/// {name}: timeout 30, force true, no wait (pylxd's defaults)."
            )])
            .register_into(api, move |i: &mut Instance| {
                i.change_state(action, StateArgs::default())
            });
        rhai::FuncRegistration::new(name)
            .with_comments([format!("/// {name}; waits when `wait` is true.")])
            .register_into(api, move |i: &mut Instance, wait: bool| {
                i.change_state(
                    action,
                    StateArgs {
                        wait,
                        ..StateArgs::default()
                    },
                )
            });
        rhai::FuncRegistration::new(name)
            .with_comments([format!(
                "/// {name} with a timeout (seconds), force and wait."
            )])
            .register_into(
                api,
                move |i: &mut Instance, timeout: i64, force: bool, wait: bool| {
                    i.change_state(
                        action,
                        StateArgs {
                            timeout,
                            force,
                            wait,
                            stateful: false,
                        },
                    )
                },
            );
        rhai::FuncRegistration::new(name)
            .with_comments([format!(
                "/// {name} with options #{{timeout, force, wait, stateful}}."
            )])
            .register_into(api, move |i: &mut Instance, options: Map| {
                let args = StateArgs::from_map(&format!("Instance.{name}"), options)?;
                i.change_state(action, args)
            });
    }

    rhai::FuncRegistration::new("state")
        .with_comments([
            "/// The runtime state: status, cpu, memory, disk, network, pid, processes.",
        ])
        .register_into(api, |i: &mut Instance| i.state(false));
    rhai::FuncRegistration::new("state")
        .with_comments([
            "/// The runtime state; with `refresh` true read anew even when a `recursion: 2` listing brought it.",
        ])
        .register_into(api, |i: &mut Instance, refresh: bool| i.state(refresh));
    rhai::FuncRegistration::new("restore_snapshot")
        .with_comments(["/// Restores a snapshot (does not wait)."])
        .register_into(api, |i: &mut Instance, name: &str| {
            i.restore_snapshot(name, false, false)
        });
    rhai::FuncRegistration::new("restore_snapshot")
        .with_comments(["/// Restores a snapshot; waits when `wait` is true."])
        .register_into(api, |i: &mut Instance, name: &str, wait: bool| {
            i.restore_snapshot(name, wait, false)
        });
    rhai::FuncRegistration::new("restore_snapshot")
        .with_comments(["/// Restores a snapshot with options #{wait, stateful}."])
        .register_into(api, |i: &mut Instance, name: &str, options: Map| {
            let o = Options::new("Instance.restore_snapshot", options, &["wait", "stateful"])?;
            i.restore_snapshot(
                name,
                o.bool("wait")?.unwrap_or(false),
                o.bool("stateful")?.unwrap_or(false),
            )
        });

    register_publish(api, "Instance.publish", Instance::publish);

    rhai::FuncRegistration::new("migrate")
        .with_comments(["/// Moves the instance to another server and returns it there (the source is removed once the destination has it)."])
        .register_into(api, |i: &mut Instance, dest: Client| i.migrate(&dest, MigrateOptions::default()));
    rhai::FuncRegistration::new("migrate")
        .with_comments([
            "/// Moves the instance, live (with its running state: needs CRIU) or not.",
        ])
        .register_into(api, |i: &mut Instance, dest: Client, live: bool| {
            i.migrate(
                &dest,
                MigrateOptions {
                    live,
                    ..MigrateOptions::default()
                },
            )
        });
    rhai::FuncRegistration::new("migrate")
        .with_comments(["/// Moves the instance; `wait` is accepted as in pylxd (the move always completes before returning)."])
        .register_into(api, |i: &mut Instance, dest: Client, live: bool, _wait: bool| {
            i.migrate(&dest, MigrateOptions { live, ..MigrateOptions::default() })
        });
    rhai::FuncRegistration::new("migrate")
        .with_comments(["/// Moves the instance with options #{live, wait, target (a cluster member), name (on the destination), shutdown_timeout (seconds a running instance gets to stop cleanly before it is stopped by force; 30)}."])
        .register_into(api, |i: &mut Instance, dest: Client, options: Map| {
            let o = Options::new("Instance.migrate", options, &["live", "wait", "target", "name", "shutdown_timeout"])?;
            let shutdown_timeout = match o.int("shutdown_timeout")? {
                None => None,
                Some(t) => Some(u32::try_from(t).map_err(|_| {
                    invalid_argument(format!("Instance.migrate: shutdown_timeout must be 0 or more seconds, not {t}"))
                })?),
            };
            let opts = MigrateOptions {
                live: o.bool("live")?.unwrap_or(false),
                name: o.string("name")?,
                target: o.string("target")?,
                shutdown_timeout,
            };
            i.migrate(&dest, opts)
        });
    rhai::FuncRegistration::new_getter("files")
        .with_comments(["/// The instance's files."])
        .register_into(api, |i: &mut Instance| -> RhaiResultOf<FileManager> {
            i.join(None)?;
            Ok(FileManager::new(i.client.clone(), &i.name))
        });
    rhai::FuncRegistration::new_getter("snapshots")
        .with_comments(["/// The instance's snapshots."])
        .register_into(api, |i: &mut Instance| -> RhaiResultOf<SnapshotManager> {
            i.join(None)?;
            Ok(SnapshotManager::new(i.client.clone(), &i.name))
        });
    super::register_display(api, Instance::describe);
    super::register_display(api, |m: &InstanceManager| {
        let kind = m.api.kind().map_or("instances", |k| match k {
            InstanceType::Container => "containers",
            InstanceType::VirtualMachine => "virtual machines",
        });
        format!("The {kind} of {}", m.client.lxd.endpoint())
    });
}
