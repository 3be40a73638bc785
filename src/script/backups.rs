//! `i.backups` and `Backup` (LXD's instance backups, which pylxd lacks), and
//! `client.instances.create_from_backup`.

use std::path::Path;

use bytes::Bytes;
use rhai::{Dynamic, Map};

use super::api::{Api, RegisterInto};
use super::errors::{RhaiResultOf, invalid_argument};
use super::instance::{Instance, InstanceManager, created_name};
use super::object::{BackupKind, Manager, Object};
use super::options::Options;
use super::pending::Settles;
use super::progress::byte_progress;
use crate::lxd::backup::{self, BackupSource, CreateBackup};
use crate::lxd::instance::Watched;

/// The options of `backups.create`.
const CREATE_OPTIONS: [&str; 6] = [
    "name",
    "expires_at",
    "instance_only",
    "optimized_storage",
    "compression_algorithm",
    "wait",
];

/// Registers `Instance.backups`, the backup calls and `instances.create_from_backup`.
pub fn register(api: &mut Api) {
    super::object::register::<BackupKind>(api, "Backups");
    rhai::FuncRegistration::new_getter("backups")
        .with_comments(["/// The instance's backups (what `lxc export` makes)."])
        .register_into(
            api,
            |i: &mut Instance| -> RhaiResultOf<Manager<BackupKind>> {
                i.join_pending()?;
                Ok(Manager::new(
                    i.client.clone(),
                    backup::backups_path(&i.name),
                ))
            },
        );
    let create = |m: &Manager<BackupKind>, options: Map| -> RhaiResultOf<Object<BackupKind>> {
        let o = Options::new("backups.create", options, &CREATE_OPTIONS)?;
        let request = CreateBackup {
            name: o.string("name")?,
            expires_at: o.string("expires_at")?,
            instance_only: o.bool("instance_only")?.unwrap_or(false),
            optimized_storage: o.bool("optimized_storage")?.unwrap_or(false),
            compression_algorithm: o.string("compression_algorithm")?,
        };
        let wait = o.bool("wait")?.unwrap_or(true);
        m.create_keyed(
            "backups.create",
            request.name.clone(),
            backup::create_body(&request),
            wait,
        )
    };
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Makes a backup named by the server (backup0, ...) and waits."])
        .register_into(api, move |m: &mut Manager<BackupKind>| {
            create(m, Map::new())
        });
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Makes a backup with options #{name, expires_at, instance_only, optimized_storage, compression_algorithm, wait (default true; an unnamed one is always waited for)}."])
        .register_into(api, move |m: &mut Manager<BackupKind>, options: Map| {
            create(m, options)
        });
    rhai::FuncRegistration::new("export_to")
        .with_comments(["/// Streams the backup's tarball to a local file, in constant memory (a progress bar on a terminal); returns its size in bytes. `lxc import` and `create_from_backup` take it."])
        .register_into(api, |b: &mut Object<BackupKind>, local: &str| -> RhaiResultOf<i64> {
            b.join(None)?;
            let progress = byte_progress(&b.client, format!("export {}", b.name), None);
            let path = b.api.path(&b.name);
            let written = b.client.bridge.block_on(backup::export(&b.client.lxd, &path, Path::new(local), progress))?;
            Ok(i64::try_from(written).unwrap_or(i64::MAX))
        });
    let import = |m: &InstanceManager, source: Dynamic, options: Map| -> RhaiResultOf<Instance> {
        let o = Options::new(
            "instances.create_from_backup",
            options,
            &["name", "pool", "wait"],
        )?;
        let (name, pool) = (o.string("name")?, o.string("pool")?);
        let wait = o.bool("wait")?.unwrap_or(true);
        let client = m.client();
        let path;
        let (tarball, progress) = if source.is_blob() {
            (
                BackupSource::Bytes(Bytes::from(source.cast::<rhai::Blob>())),
                None,
            )
        } else if let Ok(text) = source.clone().into_string() {
            path = text;
            let size = std::fs::metadata(&path).map(|m| m.len()).ok();
            let progress = byte_progress(client, format!("import {path}"), size);
            (BackupSource::File(Path::new(&path)), progress)
        } else {
            return Err(invalid_argument(format!(
                "instances.create_from_backup: give a tarball's path (string) or its bytes (blob), not {}",
                source.type_name()
            )));
        };
        let op = client.bridge.block_on(backup::import(
            &client.lxd,
            tarball,
            name.as_deref(),
            pool.as_deref(),
            progress,
        ))?;
        // Imported under its backup's name unless given one: the operation names it.
        let target = name.clone().or_else(|| created_name(&op));
        let watched = Watched::create(&serde_json::json!({ "name": target }), &op);
        m.follow_created(op, name, wait, watched)
    };
    rhai::FuncRegistration::new("create_from_backup")
        .with_comments(["/// Creates an instance from a backup tarball (a path, streamed, or a blob) as the backup names it, and waits."])
        .register_into(api, move |m: &mut InstanceManager, source: Dynamic| {
            import(m, source, Map::new())
        });
    rhai::FuncRegistration::new("create_from_backup")
        .with_comments(["/// Creates an instance from a backup tarball with options #{name, pool, wait (default true)}."])
        .register_into(api, move |m: &mut InstanceManager, source: Dynamic, options: Map| {
            import(m, source, options)
        });
}
