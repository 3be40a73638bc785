//! Instance backups: `/1.0/instances/<name>/backups` (what `lxc export` and `lxc import` use),
//! exported and imported as tarballs streamed in constant memory.

use std::path::Path;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::body::Body;
use super::client::Client;
use super::error::Result;
use super::instance;
use super::local::{Progress, file_body, save_stream_on_task};
use super::object::Kind;
use super::request::{Method, Request, ServerHeader};
use super::response::Operation;

/// Backups, keyed by their short name (the server lists them as `instance/name`). A backup is
/// renamed, not edited.
pub const BACKUP: Kind = Kind {
    noun: "Backup",
    key: "name",
    writable: &[],
    read_only: &[
        "name",
        "created_at",
        "expires_at",
        "instance_only",
        "optimized_storage",
    ],
    renamable: true,
};

/// The collection of an instance's backups.
pub fn backups_path(instance_name: &str) -> String {
    format!("{}/backups", instance::path(instance_name))
}

/// What a new backup holds and how it is packed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateBackup {
    /// Its name (the server picks `backup0`, `backup1`, ... when none).
    pub name: Option<String>,
    /// When the server deletes it (RFC 3339).
    pub expires_at: Option<String>,
    /// The instance without its snapshots.
    pub instance_only: bool,
    /// The storage driver's own format (faster, restorable only on the same driver).
    pub optimized_storage: bool,
    /// `gzip`, `xz`, `none`, ... (the server's default when unset).
    pub compression_algorithm: Option<String>,
}

/// The body of `POST <instance>/backups`.
pub fn create_body(backup: &CreateBackup) -> Value {
    let mut body = Map::new();
    if let Some(name) = &backup.name {
        body.insert("name".into(), name.as_str().into());
    }
    if let Some(at) = &backup.expires_at {
        body.insert("expires_at".into(), at.as_str().into());
    }
    body.insert("instance_only".into(), backup.instance_only.into());
    body.insert("optimized_storage".into(), backup.optimized_storage.into());
    if let Some(algorithm) = &backup.compression_algorithm {
        body.insert("compression_algorithm".into(), algorithm.as_str().into());
    }
    Value::Object(body)
}

/// Streams the tarball of the backup at `backup_path` to `local` (written beside it, renamed
/// into place when whole); returns the bytes written.
pub async fn export(
    client: &Client,
    backup_path: &str,
    local: &Path,
    progress: Option<Progress>,
) -> Result<u64> {
    let req = Request::get(format!("{backup_path}/export"));
    let resp = client.send(&req, None).await?;
    let owner = client.clone();
    save_stream_on_task(resp.into_body(), local, 0o600, progress, move |e| {
        owner.transport().body_error(e, &req)
    })
    .await
}

/// Where an imported backup comes from.
#[derive(Debug, Clone)]
pub enum BackupSource<'a> {
    /// A tarball on disk, streamed as the server reads it.
    File(&'a Path),
    /// A tarball in memory.
    Bytes(Bytes),
}

/// Starts creating an instance from a backup tarball (`POST /1.0/instances` with the tarball as
/// the body); `name` and `pool` override the backup's.
pub async fn import(
    client: &Client,
    source: BackupSource<'_>,
    name: Option<&str>,
    pool: Option<&str>,
    progress: Option<Progress>,
) -> Result<Operation> {
    let mut req = Request::new(Method::POST, "/1.0/instances")
        .header("Content-Type", "application/octet-stream");
    if let Some(name) = name {
        req = req.server_header(ServerHeader::Name, name);
    }
    if let Some(pool) = pool {
        req = req.server_header(ServerHeader::Pool, pool);
    }
    let body = match source {
        BackupSource::File(path) => file_body(path, progress).await?.0,
        BackupSource::Bytes(bytes) => Body::from(bytes),
    };
    client
        .call_with_body(&req, body)
        .await?
        .operation()
        .ok_or_else(|| {
            super::error::Error::Decode("a backup import did not start an operation".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_carry_what_was_asked() {
        let body = create_body(&CreateBackup {
            name: Some("b".into()),
            instance_only: true,
            compression_algorithm: Some("none".into()),
            ..CreateBackup::default()
        });
        assert_eq!(
            body,
            serde_json::json!({"name": "b", "instance_only": true, "optimized_storage": false, "compression_algorithm": "none"})
        );
        assert_eq!(backups_path("c 1"), "/1.0/instances/c%201/backups");
    }
}
