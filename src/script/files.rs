//! `i.files`: the Files manager.

use std::path::Path;

use bytes::Bytes;
use rhai::{Array, Blob, Dynamic, Map};

use super::api::{Api, RegisterInto};
use super::client::Client;
use super::errors::{RhaiResultOf, invalid_argument};
use super::options::Options;
use super::progress::byte_progress;
use crate::lxd::body::Body;
use crate::lxd::files::{Files, WriteAttrs};

/// The files of one instance.
#[derive(Debug, Clone)]
pub struct FileManager {
    client: Client,
    api: Files,
    instance: String,
}

impl FileManager {
    /// The files of `instance`.
    pub fn new(client: Client, instance: &str) -> Self {
        let api = Files::new(client.lxd.clone(), instance);
        FileManager {
            client,
            api,
            instance: instance.to_owned(),
        }
    }

    fn block_on<T>(
        &self,
        fut: impl std::future::Future<Output = crate::lxd::Result<T>>,
    ) -> RhaiResultOf<T> {
        self.client.bridge.block_on(fut)
    }
}

/// A mode from an int (`0o644`) or an octal string (`"0644"`, `"644"`).
pub fn parse_mode(call: &str, v: &Dynamic) -> RhaiResultOf<u32> {
    let mode = if let Ok(n) = v.as_int() {
        u32::try_from(n).ok()
    } else if v.is_string() {
        let text = v.to_string();
        let digits = text.trim_start_matches("0o");
        u32::from_str_radix(digits, 8).ok()
    } else {
        None
    };
    mode.filter(|m| *m <= 0o7777).ok_or_else(|| {
        invalid_argument(format!(
            "{call}: a mode is an int like 0o644 or an octal string like \"0644\", not {v}"
        ))
    })
}

fn id(call: &str, key: &str, v: i64) -> RhaiResultOf<u32> {
    u32::try_from(v)
        .map_err(|_| invalid_argument(format!("{call}: {key} must be a uid/gid, not {v}")))
}

/// `#{mode, uid, gid[, append][, parents]}`.
fn attrs_from_map(call: &str, map: Map, allowed: &[&str]) -> RhaiResultOf<(WriteAttrs, bool)> {
    let o = Options::new(call, map.clone(), allowed)?;
    let mode = match map.get("mode") {
        Some(v) if !v.is_unit() => Some(parse_mode(call, v)?),
        _ => None,
    };
    let attrs = WriteAttrs {
        mode,
        uid: o.int("uid")?.map(|v| id(call, "uid", v)).transpose()?,
        gid: o.int("gid")?.map(|v| id(call, "gid", v)).transpose()?,
        append: o.bool("append")?.unwrap_or(false),
    };
    Ok((attrs, o.bool("parents")?.unwrap_or(false)))
}

fn data_bytes(call: &str, data: &Dynamic) -> RhaiResultOf<Bytes> {
    if data.is_blob() {
        Ok(Bytes::from(data.clone().cast::<Blob>()))
    } else if data.is_string() {
        Ok(Bytes::from(data.to_string()))
    } else {
        Err(invalid_argument(format!(
            "{call}: data must be a string or a blob, not {}",
            data.type_name()
        )))
    }
}

impl FileManager {
    fn put(&mut self, path: &str, data: &Dynamic, attrs: WriteAttrs) -> RhaiResultOf<()> {
        let bytes = data_bytes("files.put", data)?;
        self.block_on(self.api.put(path, Body::from(bytes), &attrs))
    }

    fn push(&mut self, local: &str, path: &str, attrs: WriteAttrs) -> RhaiResultOf<i64> {
        let size = std::fs::metadata(local).ok().map(|m| m.len());
        let progress = byte_progress(&self.client, format!("push {local}"), size);
        let sent = self.block_on(self.api.push(Path::new(local), path, &attrs, progress))?;
        Ok(i64::try_from(sent).unwrap_or(i64::MAX))
    }

    fn pull(&mut self, path: &str, local: &str) -> RhaiResultOf<i64> {
        let progress = byte_progress(&self.client, format!("pull {path}"), None);
        let got = self.block_on(self.api.pull(path, Path::new(local), progress))?;
        Ok(i64::try_from(got).unwrap_or(i64::MAX))
    }

    fn mk_dir(&mut self, path: &str, attrs: WriteAttrs, parents: bool) -> RhaiResultOf<()> {
        self.block_on(self.api.mk_dir(path, &attrs, parents))
    }

    fn delete(&mut self, path: &str) -> RhaiResultOf<()> {
        self.client
            .require_extensions(&["file_delete"], "files.delete()")?;
        self.block_on(self.api.delete(path))
    }
}

/// Registers `Files`.
pub fn register(api: &mut Api) {
    api.register_type_with_name::<FileManager>("Files");

    rhai::FuncRegistration::new("put")
        .with_comments(["/// Writes a string or blob to a file in the instance (root-owned, LXD's default mode)."])
        .register_into(api, |f: &mut FileManager, path: &str, data: Dynamic| {
            f.put(path, &data, WriteAttrs::default())
        });
    rhai::FuncRegistration::new("put")
        .with_comments(["/// Writes a file with a mode (int 0o644 or octal string \"0644\")."])
        .register_into(
            api,
            |f: &mut FileManager, path: &str, data: Dynamic, mode: Dynamic| {
                let mode = parse_mode("files.put", &mode)?;
                f.put(
                    path,
                    &data,
                    WriteAttrs {
                        mode: Some(mode),
                        ..WriteAttrs::default()
                    },
                )
            },
        );
    rhai::FuncRegistration::new("put")
        .with_comments(["/// Writes a file with a mode, uid and gid."])
        .register_into(
            api,
            |f: &mut FileManager, path: &str, data: Dynamic, mode: Dynamic, uid: i64, gid: i64| {
                let attrs = WriteAttrs {
                    mode: Some(parse_mode("files.put", &mode)?),
                    uid: Some(id("files.put", "uid", uid)?),
                    gid: Some(id("files.put", "gid", gid)?),
                    append: false,
                };
                f.put(path, &data, attrs)
            },
        );
    rhai::FuncRegistration::new("put")
        .with_comments(["/// Writes a file with options #{mode, uid, gid, append}; append needs an existing file."])
        .register_into(api, |f: &mut FileManager, path: &str, data: Dynamic, options: Map| {
            let (attrs, _) = attrs_from_map("files.put", options, &["mode", "uid", "gid", "append"])?;
            f.put(path, &data, attrs)
        });
    rhai::FuncRegistration::new("get")
        .with_comments(["/// A file's exact bytes, as a blob (`.as_string()` makes it text)."])
        .register_into(
            api,
            |f: &mut FileManager, path: &str| -> RhaiResultOf<Blob> {
                Ok(f.block_on(f.api.get(path))?.to_vec())
            },
        );
    rhai::FuncRegistration::new("push")
        .with_comments(["/// Streams a local file into the instance (any size, constant memory), keeping its mode; returns the bytes sent."])
        .register_into(api, |f: &mut FileManager, local: &str, path: &str| {
            f.push(local, path, WriteAttrs::default())
        });
    rhai::FuncRegistration::new("push")
        .with_comments([
            "/// Streams a local file into the instance with options #{mode, uid, gid}.",
        ])
        .register_into(
            api,
            |f: &mut FileManager, local: &str, path: &str, options: Map| {
                let (attrs, _) = attrs_from_map("files.push", options, &["mode", "uid", "gid"])?;
                f.push(local, path, attrs)
            },
        );
    rhai::FuncRegistration::new("pull")
        .with_comments(["/// Streams a file of the instance to a local path (any size, constant memory; no partial file on failure); returns the bytes received."])
        .register_into(api, |f: &mut FileManager, path: &str, local: &str| f.pull(path, local));
    rhai::FuncRegistration::new("mk_dir")
        .with_comments(["/// Creates a directory (its parent must exist)."])
        .register_into(api, |f: &mut FileManager, path: &str| {
            f.mk_dir(path, WriteAttrs::default(), false)
        });
    rhai::FuncRegistration::new("mk_dir")
        .with_comments(["/// Creates a directory with a mode."])
        .register_into(api, |f: &mut FileManager, path: &str, mode: Dynamic| {
            let mode = parse_mode("files.mk_dir", &mode)?;
            f.mk_dir(
                path,
                WriteAttrs {
                    mode: Some(mode),
                    ..WriteAttrs::default()
                },
                false,
            )
        });
    rhai::FuncRegistration::new("mk_dir")
        .with_comments(["/// Creates a directory with options #{mode, uid, gid, parents}; parents: true creates missing parents."])
        .register_into(api, |f: &mut FileManager, path: &str, options: Map| {
            let (attrs, parents) = attrs_from_map("files.mk_dir", options, &["mode", "uid", "gid", "parents"])?;
            f.mk_dir(path, attrs, parents)
        });
    rhai::FuncRegistration::new("recursive_put")
        .with_comments(["/// Pushes a local directory tree (symlinks as symlinks, modes kept) over one SFTP session, many files in flight."])
        .register_into(api, |f: &mut FileManager, local: &str, path: &str| {
            f.block_on(f.api.recursive_put(Path::new(local), path, &WriteAttrs::default())).map(|_| ())
        });
    rhai::FuncRegistration::new("recursive_put")
        .with_comments([
            "/// Pushes a local directory tree with options #{mode (for files), uid, gid}.",
        ])
        .register_into(
            api,
            |f: &mut FileManager, local: &str, path: &str, options: Map| {
                let (attrs, _) =
                    attrs_from_map("files.recursive_put", options, &["mode", "uid", "gid"])?;
                f.block_on(f.api.recursive_put(Path::new(local), path, &attrs))
                    .map(|_| ())
            },
        );
    rhai::FuncRegistration::new("recursive_get")
        .with_comments(["/// Pulls a directory tree over one SFTP session; symlinks stay symlinks, sparse files stay sparse and nothing is written outside the local directory. Returns #{entries, skipped}: what cannot be copied (FIFOs, sockets, devices, names that are not UTF-8) is left out, listed in skipped as #{path, reason} and warned about on stderr."])
        .register_into(
            api,
            |f: &mut FileManager, path: &str, local: &str| -> RhaiResultOf<Map> {
                let pulled = f.block_on(f.api.recursive_get(path, Path::new(local)))?;
                let mut skipped = Array::new();
                for left_out in pulled.skipped {
                    eprintln!(
                        "lxd-script: recursive_get: skipped {}: {}",
                        left_out.path, left_out.reason
                    );
                    let mut entry = Map::new();
                    entry.insert("path".into(), left_out.path.into());
                    entry.insert("reason".into(), left_out.reason.into());
                    skipped.push(entry.into());
                }
                let mut result = Map::new();
                result.insert("entries".into(), Dynamic::from_int(pulled.entries as i64));
                result.insert("skipped".into(), skipped.into());
                Ok(result)
            },
        );
    rhai::FuncRegistration::new("list")
        .with_comments(["/// The names in a directory of the instance."])
        .register_into(
            api,
            |f: &mut FileManager, path: &str| -> RhaiResultOf<Array> {
                Ok(f.block_on(f.api.list(path))?
                    .into_iter()
                    .map(Dynamic::from)
                    .collect())
            },
        );
    rhai::FuncRegistration::new("exists")
        .with_comments(["/// True when the path exists in the instance."])
        .register_into(api, |f: &mut FileManager, path: &str| {
            f.block_on(f.api.stat(path)).map(|s| s.is_some())
        });
    rhai::FuncRegistration::new("delete")
        .with_comments([
            "/// Deletes a path; throws ExtensionMissing where the server lacks file_delete.",
        ])
        .register_into(api, |f: &mut FileManager, path: &str| f.delete(path));
    rhai::FuncRegistration::new("delete_available")
        .with_comments(["/// True when the server can delete files (the file_delete extension)."])
        .register_into(api, |f: &mut FileManager| {
            f.client.has_api_extension("file_delete")
        });
    super::register_display(api, |f: &FileManager| format!("Files of {}", f.instance));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_accept_ints_and_octal_strings() {
        assert_eq!(parse_mode("t", &Dynamic::from_int(0o644)).ok(), Some(0o644));
        assert_eq!(parse_mode("t", &Dynamic::from("0644")).ok(), Some(0o644));
        assert_eq!(parse_mode("t", &Dynamic::from("755")).ok(), Some(0o755));
        assert_eq!(parse_mode("t", &Dynamic::from("0o600")).ok(), Some(0o600));
        assert!(parse_mode("t", &Dynamic::from("rw-")).is_err());
        assert!(parse_mode("t", &Dynamic::from("999")).is_err());
        assert!(parse_mode("t", &Dynamic::from_int(-1)).is_err());
    }
}
