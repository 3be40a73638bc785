//! The client's object managers and what each kind adds to the common object:
//! create forms, `Network.state()`, `StoragePool.resources()` and `volumes`, certificates and
//! trust tokens, the cluster, and `client.authenticate()`.

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

use super::api::{Api, RegisterInto};
use super::client::Client;
use super::convert::{json_to_dynamic, map_to_object};
use super::errors::{RhaiResultOf, invalid_argument};
use super::object::{
    CertificateKind, ClusterMemberKind, ImageKind, Manager, NetworkForwardKind, NetworkKind,
    Object, ObjectKind, ProfileKind, ProjectKind, StoragePoolKind, StorageVolumeKind,
    StorageVolumeSnapshotKind, register,
};
use super::options::Options;
use super::pending::{After, Settles};
use crate::lxd::object::{self, Collection, restore_volume, volume_snapshots_path};
use crate::lxd::request::segment;
use crate::lxd::response::Loaded;
use crate::lxd::trust::{self, TrustRequest};

/// The body of a create call: `name` (when given) plus the allowed options, as JSON.
fn create_body(
    call: &str,
    name: Option<&str>,
    options: Map,
    allowed: &[&str],
) -> RhaiResultOf<Value> {
    Options::new(call, options.clone(), allowed)?;
    let mut body = map_to_object(&options).map_err(|e| invalid_argument(format!("{call}: {e}")))?;
    if let Some(name) = name {
        body.insert("name".into(), name.into());
    }
    Ok(Value::Object(body))
}

/// Registers `create(name)` and `create(name, #{...})` for a kind created by name.
fn register_named_create<K: ObjectKind>(
    api: &mut Api,
    call: &'static str,
    allowed: &'static [&'static str],
) {
    rhai::FuncRegistration::new("create")
        .with_comments([format!(
            "/// Creates a {} by name and returns it.",
            K::TYPE_NAME
        )])
        .register_into(api, move |m: &mut Manager<K>, name: &str| {
            m.create(name, create_body(call, Some(name), Map::new(), allowed)?)
        });
    rhai::FuncRegistration::new("create")
        .with_comments([format!(
            "/// Creates a {} with options #{{{}}} and returns it.",
            K::TYPE_NAME,
            allowed.join(", ")
        )])
        .register_into(api, move |m: &mut Manager<K>, name: &str, options: Map| {
            m.create(name, create_body(call, Some(name), options, allowed)?)
        });
}

/// Registers `create(definition)` for a kind whose key is a field of the definition
/// (`allowed[0]`: a pool's `name`, a forward's `listen_address`); `missing` says how to give it.
fn register_definition_create<K: ObjectKind>(
    api: &mut Api,
    call: &'static str,
    allowed: &'static [&'static str],
    missing: &'static str,
    doc: &'static str,
) {
    rhai::FuncRegistration::new("create")
        .with_comments([doc])
        .register_into(api, move |m: &mut Manager<K>, definition: Map| {
            let key = definition
                .get(allowed[0])
                .and_then(|k| k.clone().into_string().ok())
                .ok_or_else(|| invalid_argument(format!("{call}: {missing}")))?;
            let body = create_body(call, None, definition, allowed)?;
            m.create(&key, body)
        });
}

/// `pool.volumes`: the storage volumes of one pool, keyed by type and name.
#[derive(Debug, Clone)]
pub struct VolumeManager {
    client: Client,
    pool: String,
}

impl VolumeManager {
    fn base(&self) -> String {
        object::volumes_path(&self.pool)
    }

    fn of_type(&self, kind: &str) -> Manager<StorageVolumeKind> {
        Manager::new(
            self.client.clone(),
            format!("{}/{}", self.base(), segment(kind)),
        )
    }
}

/// `client.cluster`.
#[derive(Debug, Clone)]
pub struct Cluster {
    client: Client,
}

/// Registers the managers of every kind and their own calls.
pub fn register_all(api: &mut Api) {
    register::<ProfileKind>(api, "Profiles");
    register::<NetworkKind>(api, "Networks");
    register::<NetworkForwardKind>(api, "NetworkForwards");
    register::<StoragePoolKind>(api, "StoragePools");
    register::<StorageVolumeKind>(api, "StorageVolumes");
    register::<ProjectKind>(api, "Projects");
    register::<CertificateKind>(api, "Certificates");
    register::<ClusterMemberKind>(api, "ClusterMembers");
    register::<ImageKind>(api, "Images");
    register::<StorageVolumeSnapshotKind>(api, "StorageVolumeSnapshots");

    rhai::FuncRegistration::new_getter("profiles")
        .with_comments(["/// The profiles."])
        .register_into(api, |c: &mut Client| {
            Manager::<ProfileKind>::new(c.clone(), object::PROFILES)
        });
    rhai::FuncRegistration::new_getter("networks")
        .with_comments(["/// The networks."])
        .register_into(api, |c: &mut Client| {
            Manager::<NetworkKind>::new(c.clone(), object::NETWORKS)
        });
    rhai::FuncRegistration::new_getter("storage_pools")
        .with_comments(["/// The storage pools."])
        .register_into(api, |c: &mut Client| {
            Manager::<StoragePoolKind>::new(c.clone(), object::STORAGE_POOLS)
        });
    rhai::FuncRegistration::new_getter("projects")
        .with_comments(["/// The projects."])
        .register_into(api, |c: &mut Client| {
            Manager::<ProjectKind>::new(c.clone(), object::PROJECTS)
        });
    rhai::FuncRegistration::new_getter("certificates")
        .with_comments(["/// The trusted certificates."])
        .register_into(api, |c: &mut Client| {
            Manager::<CertificateKind>::new(c.clone(), object::CERTIFICATES)
        });
    rhai::FuncRegistration::new_getter("cluster")
        .with_comments(["/// The cluster this server belongs to (if any)."])
        .register_into(api, |c: &mut Client| Cluster { client: c.clone() });

    register_named_create::<ProfileKind>(
        api,
        "profiles.create",
        &["config", "devices", "description"],
    );
    register_named_create::<NetworkKind>(
        api,
        "networks.create",
        &["type", "config", "description"],
    );
    register_named_create::<ProjectKind>(api, "projects.create", &["config", "description"]);
    register_definition_create::<StoragePoolKind>(
        api,
        "storage_pools.create",
        &["name", "driver", "config", "description"],
        "give the pool a name",
        "/// Creates a storage pool from #{name, driver, config, description} and returns it.",
    );

    rhai::FuncRegistration::new("state")
        .with_comments([
            "/// The network's runtime state: addresses, counters, hwaddr, mtu, state, type.",
        ])
        .register_into(api, |n: &mut Object<NetworkKind>| n.sub_resource("state"));
    register_network_forwards(api);
    rhai::FuncRegistration::new("resources")
        .with_comments(["/// The pool's space and inode usage."])
        .register_into(api, |p: &mut Object<StoragePoolKind>| {
            p.sub_resource("resources")
        });
    register_volumes(api);
    register_certificates(api);
    register_cluster(api);
}

fn register_volumes(api: &mut Api) {
    api.register_type_with_name::<VolumeManager>("Volumes");
    rhai::FuncRegistration::new_getter("volumes")
        .with_comments(["/// The pool's storage volumes."])
        .register_into(api, |p: &mut Object<StoragePoolKind>| VolumeManager {
            client: p.client.clone(),
            pool: p.name.clone(),
        });
    rhai::FuncRegistration::new("all")
        .with_comments(["/// Every volume of the pool (all types), fully loaded, in one request."])
        .register_into(api, |v: &mut VolumeManager| -> RhaiResultOf<Array> {
            let all = Collection::new(
                v.client.lxd.clone(),
                &crate::lxd::object::STORAGE_VOLUME,
                v.base(),
            );
            let items = v.client.bridge.block_on(all.all())?;
            Ok(items
                .into_iter()
                .map(|fields| {
                    let text = |k: &str| {
                        fields
                            .get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let (kind, name) = (text("type"), text("name"));
                    let api = v.of_type(&kind).api;
                    Dynamic::from(Object::<StorageVolumeKind>::new(
                        v.client.clone(),
                        api,
                        &name,
                        Loaded { fields, etag: None },
                    ))
                })
                .collect())
        });
    rhai::FuncRegistration::new("get")
        .with_comments(["/// Loads a volume by type (`custom`, `container`, ...) and name."])
        .register_into(api, |v: &mut VolumeManager, kind: &str, name: &str| {
            v.of_type(kind).get(name)
        });
    rhai::FuncRegistration::new("exists")
        .with_comments(["/// True when a volume of that type and name exists."])
        .register_into(api, |v: &mut VolumeManager, kind: &str, name: &str| {
            v.of_type(kind).exists(name)
        });
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Creates a volume from #{name, type (default custom), config, description, content_type}."])
        .register_into(api, |v: &mut VolumeManager, definition: Map| {
            let o = Options::new("volumes.create", definition.clone(), &["name", "type", "config", "description", "content_type"])?;
            let name = o.string("name")?.ok_or_else(|| invalid_argument("volumes.create: give the volume a name"))?;
            let kind = o.string("type")?.unwrap_or_else(|| "custom".to_owned());
            let mut body = map_to_object(&definition).map_err(|e| invalid_argument(format!("volumes.create: {e}")))?;
            body.insert("type".into(), kind.clone().into());
            v.of_type(&kind).create(&name, Value::Object(body))
        });
    super::register_display(api, |v: &VolumeManager| {
        format!("Volumes of pool {}", v.pool)
    });
    register_volume_snapshots(api);
}

/// `network.forwards` (pylxd's `NetworkForward`s): addresses of the host forwarded to
/// instances behind the network, keyed by listen address, with `ports` and `config` editable.
fn register_network_forwards(api: &mut Api) {
    rhai::FuncRegistration::new_getter("forwards")
        .with_comments([
            "/// The network's forwards (pylxd's `Network.forwards`), keyed by listen address.",
        ])
        .register_into(api, |n: &mut Object<NetworkKind>| {
            Manager::<NetworkForwardKind>::new(n.client.clone(), object::forwards_path(&n.name))
        });
    register_definition_create::<NetworkForwardKind>(
        api,
        "forwards.create",
        &["listen_address", "description", "config", "ports"],
        "give the listen_address (an address of the host to forward from)",
        "/// Creates a forward from #{listen_address, description, config, ports (an array of #{protocol, listen_port, target_address, target_port, description})} and returns it.",
    );
}

/// `volume.snapshots` (pylxd's `StorageVolumeSnapshot`s): create, with a name or the server's
/// own, all, get, exists; on a snapshot description and expires_at with save/put/patch, rename,
/// restore and delete.
fn register_volume_snapshots(api: &mut Api) {
    rhai::FuncRegistration::new_getter("snapshots")
        .with_comments(["/// The volume's snapshots (pylxd's `StorageVolume.snapshots`)."])
        .register_into(api, |v: &mut Object<StorageVolumeKind>| {
            Manager::<StorageVolumeSnapshotKind>::new(
                v.client.clone(),
                volume_snapshots_path(&v.api.path(&v.name)),
            )
        });
    let create = |m: &Manager<StorageVolumeSnapshotKind>,
                  name: Option<String>,
                  expires_at: Option<String>,
                  wait: bool| {
        let mut body = serde_json::Map::new();
        if let Some(name) = &name {
            body.insert("name".into(), name.clone().into());
        }
        if let Some(at) = expires_at {
            body.insert("expires_at".into(), at.into());
        }
        m.create_keyed("volume snapshots.create", name, Value::Object(body), wait)
    };
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Takes a snapshot named by the server (snap0, snap1, ...) and waits."])
        .register_into(api, move |m: &mut Manager<StorageVolumeSnapshotKind>| {
            create(m, None, None, true)
        });
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Takes a snapshot of that name and waits."])
        .register_into(
            api,
            move |m: &mut Manager<StorageVolumeSnapshotKind>, name: &str| {
                create(m, Some(name.to_owned()), None, true)
            },
        );
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Takes a snapshot with options #{name, expires_at, wait (default true; an unnamed one is always waited for)}."])
        .register_into(
            api,
            move |m: &mut Manager<StorageVolumeSnapshotKind>, options: Map| {
                let o = Options::new("volume snapshots.create", options, &["name", "expires_at", "wait"])?;
                create(m, o.string("name")?, o.string("expires_at")?, o.bool("wait")?.unwrap_or(true))
            },
        );
    let restore = |s: &mut Object<StorageVolumeSnapshotKind>, wait: bool| -> RhaiResultOf<()> {
        s.join(None)?;
        let volume = s
            .api
            .base()
            .strip_suffix("/snapshots")
            .unwrap_or_default()
            .to_owned();
        let op = s
            .client
            .bridge
            .block_on(s.client.lxd.start(&restore_volume(&volume, &s.name)))?;
        s.follow(op, wait, After::Nothing)
    };
    rhai::FuncRegistration::new("restore")
        .with_comments(["/// Restores the volume to this snapshot and waits."])
        .register_into(api, move |s: &mut Object<StorageVolumeSnapshotKind>| {
            restore(s, true)
        });
    rhai::FuncRegistration::new("restore")
        .with_comments(["/// Restores the volume to this snapshot; waits when `wait` is true."])
        .register_into(
            api,
            move |s: &mut Object<StorageVolumeSnapshotKind>, wait: bool| restore(s, wait),
        );
}

fn register_certificates(api: &mut Api) {
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Trusts a certificate: #{name, certificate (PEM text), password, trust_token, restricted, projects}."])
        .register_into(api, |m: &mut Manager<CertificateKind>, options: Map| {
            let o = Options::new(
                "certificates.create",
                options,
                &["name", "certificate", "password", "trust_token", "restricted", "projects"],
            )?;
            let pem = o
                .string("certificate")?
                .ok_or_else(|| invalid_argument("certificates.create: give the certificate (PEM text)"))?;
            let cert = trust::certificate_from_pem(&pem).map_err(super::errors::lxd_error)?;
            let request = TrustRequest {
                name: o.string("name")?.unwrap_or_default(),
                certificate: Some(cert.clone()),
                password: o.string("password")?,
                trust_token: o.string("trust_token")?,
                restricted: o.bool("restricted")?.unwrap_or(false),
                projects: o.strings("projects")?.unwrap_or_default(),
            };
            m.client.bridge.block_on(trust::trust(&m.client.lxd, &request))?;
            m.get(&cert.fingerprint)
        });
    rhai::FuncRegistration::new("create_token")
        .with_comments(["/// Creates a trust token for a new client and returns it (as `lxc config trust add` does)."])
        .register_into(api, |m: &mut Manager<CertificateKind>, name: &str| {
            m.client.bridge.block_on(trust::create_token(&m.client.lxd, name))
        });
    rhai::FuncRegistration::new("authenticate")
        .with_comments(["/// Makes this client trusted with a trust token or the legacy trust password (whichever the server takes)."])
        .register_into(api, |c: &mut Client, secret: &str| -> RhaiResultOf<()> {
            if c.is_trusted() {
                return Ok(());
            }
            // No certificate: the server takes the one this connection presents.
            c.bridge.block_on(trust::authenticate(&c.lxd, c.host_info(), secret))?;
            c.reload_host_info()
        });
}

fn register_cluster(api: &mut Api) {
    api.register_type_with_name::<Cluster>("Cluster");
    rhai::FuncRegistration::new_getter("enabled")
        .with_comments(["/// True when the server is clustered."])
        .register_into(api, |c: &mut Cluster| -> RhaiResultOf<bool> {
            let info = c
                .client
                .bridge
                .block_on(c.client.lxd.get(object::CLUSTER))?;
            Ok(info
                .get("enabled")
                .and_then(Value::as_bool)
                .unwrap_or(false))
        });
    rhai::FuncRegistration::new_getter("server_name")
        .with_comments(["/// This member's name in the cluster."])
        .register_into(api, |c: &mut Cluster| -> RhaiResultOf<Dynamic> {
            let info = c
                .client
                .bridge
                .block_on(c.client.lxd.get(object::CLUSTER))?;
            Ok(info
                .get("server_name")
                .map_or(Dynamic::UNIT, json_to_dynamic))
        });
    rhai::FuncRegistration::new_getter("members")
        .with_comments(["/// The cluster's members."])
        .register_into(api, |c: &mut Cluster| {
            Manager::<ClusterMemberKind>::new(c.client.clone(), object::CLUSTER_MEMBERS)
        });
    super::register_display(api, |c: &Cluster| {
        format!("Cluster of {}", c.client.lxd.endpoint())
    });
}
