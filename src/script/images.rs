//! `client.images` and `Image`: the common object plus `get_by_alias`, streamed
//! `create` and `export_to`, downloads the server makes (simplestreams, URL), aliases, and
//! `copy` to another server.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use rhai::{Blob, Dynamic, Map};
use serde_json::Value;

use super::api::{Api, RegisterInto};
use super::client::Client;
use super::errors::{RhaiResultOf, invalid_argument};
use super::object::{ImageKind, Manager, Object};
use super::options::{Options, strings};
use super::progress::{byte_progress, operation_progress};
use crate::lxd::image::{Download, Images, ImportSource};
use crate::lxd::object;

/// `client.images`.
pub fn manager(client: &Client) -> Manager<ImageKind> {
    Manager::new(client.clone(), object::IMAGES)
}

/// Loads an image by fingerprint from `client`.
pub fn load(client: &Client, fingerprint: &str) -> RhaiResultOf<Object<ImageKind>> {
    manager(client).get(fingerprint)
}

/// The image calls of a client's LXD API.
fn images_api(client: &Client) -> Images {
    Images::new(client.lxd.clone())
}

/// Adds aliases to a freshly made image, then loads it.
fn finish(
    client: &Client,
    fingerprint: &str,
    aliases: &[String],
) -> RhaiResultOf<Object<ImageKind>> {
    for alias in aliases {
        client
            .bridge
            .block_on(images_api(client).add_alias(alias, fingerprint, ""))?;
    }
    load(client, fingerprint)
}

/// Options of `create` and `copy`.
struct Placement {
    public: bool,
    aliases: Vec<String>,
    wait: bool,
}

impl Placement {
    /// The placement an options map asks for (private, no aliases, waited by default).
    fn of(o: &Options) -> RhaiResultOf<Placement> {
        Ok(Placement {
            public: o.bool("public")?.unwrap_or(false),
            aliases: o.strings("aliases")?.unwrap_or_default(),
            wait: o.bool("wait")?.unwrap_or(true),
        })
    }
}

fn placement(call: &str, options: Map) -> RhaiResultOf<Placement> {
    Placement::of(&Options::new(
        call,
        options,
        &["public", "aliases", "wait"],
    )?)
}

fn import_source(data: &Dynamic) -> RhaiResultOf<ImportSource> {
    if data.is_blob() {
        return Ok(ImportSource::Bytes(Bytes::from(
            data.clone().cast::<Blob>(),
        )));
    }
    if data.is_string() {
        return Ok(ImportSource::Unified(PathBuf::from(data.to_string())));
    }
    match strings(data).as_deref() {
        Some([metadata, rootfs]) => Ok(ImportSource::Split {
            metadata: PathBuf::from(metadata),
            rootfs: PathBuf::from(rootfs),
        }),
        _ => Err(invalid_argument(format!(
            "images.create: give a blob, a tarball path, or [metadata_path, rootfs_path], not {}",
            data.type_name()
        ))),
    }
}

fn create(m: &Manager<ImageKind>, data: &Dynamic, p: Placement) -> RhaiResultOf<Dynamic> {
    let source = import_source(data)?;
    let size = match &source {
        ImportSource::Unified(path) => std::fs::metadata(path).ok().map(|m| m.len()),
        ImportSource::Split { rootfs, .. } => std::fs::metadata(rootfs).ok().map(|m| m.len()),
        ImportSource::Bytes(_) => None,
    };
    let progress = byte_progress(&m.client, "import".to_owned(), size);
    let op = m
        .client
        .bridge
        .block_on(images_api(&m.client).import(&source, p.public, progress))?;
    made(m, op, &p, "import", None)
}

/// What a call that makes an image returns: the Image once `op` ends (with its aliases), or
/// the Operation when not waiting. `what` names the progress bar.
fn made(
    m: &Manager<ImageKind>,
    op: crate::lxd::response::Operation,
    p: &Placement,
    what: &str,
    doing: Option<String>,
) -> RhaiResultOf<Dynamic> {
    if !p.wait {
        return Ok(Dynamic::from(super::operations::Operation::new(
            &m.client, op,
        )));
    }
    let done = m.client.bridge.block_on(async {
        let waited = m
            .client
            .lxd
            .wait_operation_reporting(op.id(), None, operation_progress(&m.client, what))
            .await;
        match &doing {
            Some(doing) => waited.map_err(|e| e.doing(doing)),
            None => waited,
        }
    })?;
    let fingerprint = done
        .metadata()
        .get("fingerprint")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_argument(format!("images: the {what} ended without a fingerprint")))?
        .to_owned();
    Ok(Dynamic::from(finish(&m.client, &fingerprint, &p.aliases)?))
}

/// pylxd's `create_from_simplestreams` and `create_from_url`: the server downloads the image
/// itself. Options #{public, auto_update, aliases, wait}.
fn download(
    m: &Manager<ImageKind>,
    from: Download,
    call: &str,
    options: Map,
) -> RhaiResultOf<Dynamic> {
    let o = Options::new(call, options, &["public", "auto_update", "aliases", "wait"])?;
    let p = Placement::of(&o)?;
    let auto_update = o.bool("auto_update")?.unwrap_or(false);
    let op =
        m.client
            .bridge
            .block_on(images_api(&m.client).download(&from, p.public, auto_update))?;
    made(m, op, &p, "download", Some(from.describe()))
}

fn copy(image: &mut Object<ImageKind>, dest: &Client, p: Placement) -> RhaiResultOf<Dynamic> {
    let public = image.field("public")?.as_bool().unwrap_or(false);
    let source = &image.client;
    let op = dest.bridge.block_on(images_api(dest).copy_from(
        &source.lxd,
        source.host_info(),
        &image.name,
        public,
        p.public,
    ))?;
    if !p.wait {
        return Ok(Dynamic::from(super::operations::Operation::new(dest, op)));
    }
    dest.bridge.block_on(dest.lxd.wait_operation_reporting(
        op.id(),
        None,
        operation_progress(dest, "copy"),
    ))?;
    Ok(Dynamic::from(finish(dest, &image.name, &p.aliases)?))
}

/// Registers what images add to the common object.
pub fn register(api: &mut Api) {
    rhai::FuncRegistration::new_getter("images")
        .with_comments(["/// The images."])
        .register_into(api, |c: &mut Client| manager(c));
    rhai::FuncRegistration::new("create_from_simplestreams")
        .with_comments(["/// Has the server download an image from a simplestreams image server (`https://images.linuxcontainers.org`) by its alias there, and waits; returns the Image."])
        .register_into(api, |m: &mut Manager<ImageKind>, server: &str, alias: &str| {
            let from = Download::SimpleStreams { server: server.to_owned(), alias: alias.to_owned() };
            download(m, from, "images.create_from_simplestreams", Map::new())
        });
    rhai::FuncRegistration::new("create_from_simplestreams")
        .with_comments(["/// create_from_simplestreams with options #{public, auto_update, aliases, wait (default true; false returns the Operation)}."])
        .register_into(api, |m: &mut Manager<ImageKind>, server: &str, alias: &str, options: Map| {
            let from = Download::SimpleStreams { server: server.to_owned(), alias: alias.to_owned() };
            download(m, from, "images.create_from_simplestreams", options)
        });
    rhai::FuncRegistration::new("create_from_url")
        .with_comments(["/// Has the server download an image from a URL that answers with LXD's `LXD-Image-URL` and `LXD-Image-Hash` headers (Incus's `Incus-Image-*`), and waits; returns the Image."])
        .register_into(api, |m: &mut Manager<ImageKind>, url: &str| {
            download(m, Download::Url(url.to_owned()), "images.create_from_url", Map::new())
        });
    rhai::FuncRegistration::new("create_from_url")
        .with_comments(["/// create_from_url with options #{public, auto_update, aliases, wait (default true; false returns the Operation)}."])
        .register_into(api, |m: &mut Manager<ImageKind>, url: &str, options: Map| {
            download(m, Download::Url(url.to_owned()), "images.create_from_url", options)
        });
    rhai::FuncRegistration::new("get_by_alias")
        .with_comments(["/// Loads the image an alias points at."])
        .register_into(api, |m: &mut Manager<ImageKind>, alias: &str| {
            let fingerprint = m
                .client
                .bridge
                .block_on(images_api(&m.client).alias_target(alias))?;
            m.get(&fingerprint)
        });
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Imports an image from a blob, a tarball path or [metadata, rootfs] paths (streamed) and waits."])
        .register_into(api, |m: &mut Manager<ImageKind>, data: Dynamic| {
            create(m, &data, placement("images.create", Map::new())?)
        });
    rhai::FuncRegistration::new("create")
        .with_comments(["/// Imports an image with options #{public, aliases, wait}; without waiting returns the Operation."])
        .register_into(api, |m: &mut Manager<ImageKind>, data: Dynamic, options: Map| {
            create(m, &data, placement("images.create", options)?)
        });
    rhai::FuncRegistration::new("add_alias")
        .with_comments(["/// Points a new alias at this image."])
        .register_into(
            api,
            |i: &mut Object<ImageKind>, name: &str, description: &str| {
                i.client.bridge.block_on(images_api(&i.client).add_alias(
                    name,
                    &i.name,
                    description,
                ))?;
                i.field("aliases").map(|_| ())
            },
        );
    rhai::FuncRegistration::new("add_alias")
        .with_comments(["/// Points a new alias at this image."])
        .register_into(api, |i: &mut Object<ImageKind>, name: &str| {
            i.client
                .bridge
                .block_on(images_api(&i.client).add_alias(name, &i.name, ""))
        });
    rhai::FuncRegistration::new("delete_alias")
        .with_comments(["/// Removes an alias."])
        .register_into(api, |i: &mut Object<ImageKind>, name: &str| {
            i.client
                .bridge
                .block_on(images_api(&i.client).delete_alias(name))
        });
    rhai::FuncRegistration::new("export_to")
        .with_comments(["/// Streams the image to a local file (a split image also writes FILE.root); returns the paths written."])
        .register_into(api, |i: &mut Object<ImageKind>, local: &str| -> RhaiResultOf<rhai::Array> {
            let size = i.field("size")?.as_int().ok().and_then(|s| u64::try_from(s).ok());
            let progress = byte_progress(&i.client, format!("export {}", i.name.chars().take(12).collect::<String>()), size);
            let written = i.client.bridge.block_on(images_api(&i.client).export(&i.name, Path::new(local), progress))?;
            Ok(written.iter().map(|p| Dynamic::from(p.display().to_string())).collect())
        });
    rhai::FuncRegistration::new("copy")
        .with_comments(["/// Copies the image to another server (private images through a one-time secret) and returns it there."])
        .register_into(api, |i: &mut Object<ImageKind>, dest: Client| {
            copy(i, &dest, placement("Image.copy", Map::new())?)
        });
    rhai::FuncRegistration::new("copy")
        .with_comments([
            "/// Copies the image to another server with options #{public, aliases, wait}.",
        ])
        .register_into(
            api,
            |i: &mut Object<ImageKind>, dest: Client, options: Map| {
                copy(i, &dest, placement("Image.copy", options)?)
            },
        );
}
