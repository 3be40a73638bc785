//! Recursive transfers over SFTP. `GET /1.0/instances/<name>/sftp` with `Upgrade: sftp` turns
//! the connection into a raw SFTP session on the instance's file system (LXD 5.0 and later; no
//! API extension names it). One session carries many requests in flight, where the files API
//! costs a request, and a helper process in the daemon, per file.
//!
//! The rules of the files API hold here too: uid, gid and mode apply to what a push creates,
//! not to what was already there; a pull never follows a symlink, never writes through one, and
//! refuses entry names that could leave the destination.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use futures_util::{TryStreamExt, stream};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::{Config, SftpSession};
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client::Client;
use super::error::{Error, Result};
use super::files::WriteAttrs;
use super::instance;
use super::local::save_stream;
use super::request::Request;

/// Files in flight at once over one session.
const FILES_IN_FLIGHT: usize = 16;

/// How much of a local file one read takes (SFTP splits it into packets).
const READ_CHUNK: usize = 256 * 1024;

/// How long opening and closing a FIFO to release its reader may take.
const FIFO_RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long one SFTP request may wait for its answer.
const REQUEST_TIMEOUT_SECS: u64 = 60;

/// An SFTP session on one instance.
pub struct Session {
    sftp: SftpSession,
    instance: String,
    endpoint: String,
    /// Where its calls go, for messages (`project 'default' of remote 'main'`).
    place: String,
}

/// A local directory to create in the instance.
struct LocalDir {
    remote: String,
    mode: u32,
    depth: usize,
}

/// A local file or symlink to send.
struct LocalLeaf {
    local: PathBuf,
    remote: String,
    meta: std::fs::Metadata,
}

/// An entry a tree pull left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its path in the instance (invalid UTF-8 shown as U+FFFD).
    pub path: String,
    /// Why it was not copied.
    pub reason: String,
}

/// What a tree pull did.
#[derive(Debug, Default)]
pub struct TreePull {
    /// Entries copied (files, directories, symlinks).
    pub entries: u64,
    /// Entries that cannot be copied: FIFOs, sockets and devices, and names that are not UTF-8.
    pub skipped: Vec<Skipped>,
}

/// A kind of file that is not a regular file, directory or symlink: nothing to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialFile {
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A unix socket.
    Socket,
}

impl SpecialFile {
    /// The kind that SFTP permission bits describe, if they describe a special file.
    pub fn from_permissions(permissions: Option<u32>) -> Option<SpecialFile> {
        match permissions? & 0o170_000 {
            0o010_000 => Some(SpecialFile::Fifo),
            0o020_000 => Some(SpecialFile::CharDevice),
            0o060_000 => Some(SpecialFile::BlockDevice),
            0o140_000 => Some(SpecialFile::Socket),
            _ => None,
        }
    }
}

impl std::fmt::Display for SpecialFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SpecialFile::Fifo => "FIFO",
            SpecialFile::CharDevice => "character device",
            SpecialFile::BlockDevice => "block device",
            SpecialFile::Socket => "socket",
        })
    }
}

/// One entry of a listed remote directory.
enum Listed {
    /// To fetch.
    Entry(RemoteEntry),
    /// Not to be copied.
    Skipped(Skipped),
}

/// What fetching one entry gave.
enum Fetched {
    /// A directory, created locally, to list next.
    Dir(String, PathBuf),
    /// A file or symlink, copied.
    Copied,
    /// Left out.
    Skipped(Skipped),
}

/// A remote entry to fetch.
struct RemoteEntry {
    remote: String,
    local: PathBuf,
    attrs: FileAttributes,
}

impl Session {
    /// Opens a session on `instance` through `client`'s connection settings.
    pub async fn open(client: &Client, instance: &str) -> Result<Session> {
        let req = Request::get(format!("{}/sftp", instance::path(instance)))
            .header("Upgrade", "sftp")
            .header("Connection", "Upgrade");
        let stream = client.upgrade(&req).await?;
        let config = Config {
            request_timeout_secs: REQUEST_TIMEOUT_SECS,
            ..Config::default()
        };
        let endpoint = client.endpoint().to_string();
        let sftp = SftpSession::new_with_config(stream, config)
            .await
            .map_err(|e| Error::Connection {
                endpoint: endpoint.clone(),
                source: format!("the SFTP session with {instance} did not start: {e}").into(),
            })?;
        Ok(Session {
            sftp,
            instance: instance.to_owned(),
            endpoint,
            place: client.place(),
        })
    }

    /// Our error for an SFTP failure on `path`: the instance's answer keeps its category
    /// (missing → NotFound, denied → Forbidden), a broken session is a connection error.
    fn error(&self, path: &str, e: SftpError) -> Error {
        match e {
            SftpError::Status(s) => {
                let status = match s.status_code {
                    StatusCode::NoSuchFile => 404,
                    StatusCode::PermissionDenied => 403,
                    _ => 400,
                };
                let message = match status {
                    404 => format!(
                        "{path} not found in instance '{}' ({})",
                        self.instance, self.place
                    ),
                    _ => format!("{path} in {}: {}", self.instance, s.error_message),
                };
                Error::Api {
                    status,
                    message,
                    operation: None,
                }
            }
            SftpError::Timeout => Error::Timeout {
                what: format!("SFTP request on {path} in {}", self.instance),
                seconds: REQUEST_TIMEOUT_SECS as f64,
                operation: None,
            },
            other => Error::Connection {
                endpoint: self.endpoint.clone(),
                source: format!("SFTP on {path} in {}: {other}", self.instance).into(),
            },
        }
    }

    /// The same for an I/O error of an open remote file (a timed-out one stays a timeout).
    fn io_error(&self, path: &str, e: std::io::Error) -> Error {
        self.error(path, SftpError::from(e))
    }

    /// Pushes the local tree `local` to `remote`: directories top-down, a level at a time, then
    /// files and symlinks (as symlinks), many in flight. Returns the bytes sent.
    pub async fn push_tree(&self, local: &Path, remote: &str, attrs: &WriteAttrs) -> Result<u64> {
        let (dirs, leaves) = walk_local(local, remote)?;
        let deepest = dirs.iter().map(|d| d.depth).max().unwrap_or(0);
        for depth in 0..=deepest {
            stream::iter(dirs.iter().filter(|d| d.depth == depth).map(Ok))
                .try_for_each_concurrent(FILES_IN_FLIGHT, |dir| self.make_dir(dir, attrs))
                .await?;
        }
        let sent: Vec<u64> = stream::iter(leaves.iter().map(Ok))
            .map_ok(|leaf| self.push_leaf(leaf, attrs))
            .try_buffer_unordered(FILES_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(sent.iter().sum())
    }

    /// Creates a directory; one that exists already is kept as it is.
    async fn make_dir(&self, dir: &LocalDir, attrs: &WriteAttrs) -> Result<()> {
        match self.sftp.create_dir(dir.remote.as_str()).await {
            Ok(()) => {
                for set in new_entry_attrs(dir.mode & 0o7777, attrs) {
                    self.sftp
                        .set_metadata(dir.remote.as_str(), set)
                        .await
                        .map_err(|e| self.error(&dir.remote, e))?;
                }
                Ok(())
            }
            Err(e) => match self.sftp.symlink_metadata(dir.remote.as_str()).await {
                Ok(existing) if existing.is_dir() => Ok(()),
                // Only the top's parent can be missing: every deeper parent was made here.
                Err(_)
                    if dir.depth == 0
                        && matches!(&e, SftpError::Status(s) if matches!(s.status_code, StatusCode::NoSuchFile)) =>
                {
                    let parent = super::files::parent_dir(&dir.remote);
                    Err(Error::Api {
                        status: 404,
                        message: format!(
                            "{} cannot be made: its directory {parent} is not found in instance '{}' ({}): create it first",
                            dir.remote, self.instance, self.place
                        ),
                        operation: None,
                    })
                }
                _ => Err(self.error(&dir.remote, e)),
            },
        }
    }

    /// Sends one file or symlink; other kinds (sockets, fifos, devices) are skipped.
    async fn push_leaf(&self, leaf: &LocalLeaf, attrs: &WriteAttrs) -> Result<u64> {
        let local_error = |e: std::io::Error| Error::local("read", &leaf.local, e);
        if leaf.meta.file_type().is_symlink() {
            let target = std::fs::read_link(&leaf.local).map_err(local_error)?;
            self.make_symlink(&leaf.remote, &target.to_string_lossy())
                .await?;
            return Ok(0);
        }
        if !leaf.meta.is_file() {
            return Ok(0);
        }
        let mut source = tokio::fs::File::open(&leaf.local)
            .await
            .map_err(local_error)?;
        let remote = leaf.remote.as_str();
        // Exclusive creation tells a new file (whose attributes we set) from an existing one.
        let created = self
            .sftp
            .open_with_flags(
                remote,
                OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
            )
            .await;
        let (mut file, created) = match created {
            Ok(file) => (file, true),
            Err(_) => {
                let file = self
                    .sftp
                    .open_with_flags(remote, OpenFlags::TRUNCATE | OpenFlags::WRITE)
                    .await
                    .map_err(|e| self.error(remote, e))?;
                (file, false)
            }
        };
        let mut buffer = vec![0; READ_CHUNK];
        let mut sent = 0u64;
        loop {
            let n = source.read(&mut buffer).await.map_err(local_error)?;
            if n == 0 {
                break;
            }
            file.write_all(&buffer[..n])
                .await
                .map_err(|e| self.io_error(remote, e))?;
            sent += n as u64;
        }
        if created {
            let mode = attrs
                .mode
                .unwrap_or(leaf.meta.permissions().mode() & 0o7777);
            for set in new_entry_attrs(mode, attrs) {
                file.set_metadata(set)
                    .await
                    .map_err(|e| self.error(remote, e))?;
            }
        }
        // Not a flush: that would ask the server to fsync every file.
        file.shutdown()
            .await
            .map_err(|e| self.io_error(remote, e))?;
        Ok(sent)
    }

    /// Renames `from` to `to`, replacing what `to` names in one step (the server renames as
    /// POSIX does).
    pub async fn rename_over(&self, from: &str, to: &str) -> Result<()> {
        self.sftp
            .rename(from, to)
            .await
            .map_err(|e| self.error(to, e))
    }

    /// Creates the symlink `path` → `target`, replacing a file or symlink already there.
    async fn make_symlink(&self, path: &str, target: &str) -> Result<()> {
        // LXD's server takes SYMLINK's two paths in OpenSSH's order, target first: the reverse
        // of the draft standard that the client library follows.
        let first = self.sftp.symlink(target, path).await;
        let Err(e) = first else { return Ok(()) };
        match self.sftp.symlink_metadata(path).await {
            Ok(existing) if !existing.is_dir() => {
                self.sftp
                    .remove_file(path)
                    .await
                    .map_err(|e| self.error(path, e))?;
                self.sftp
                    .symlink(target, path)
                    .await
                    .map_err(|e| self.error(path, e))
            }
            _ => Err(self.error(path, e)),
        }
    }

    /// Pulls the tree at `remote` into `local` (created if missing, with missing parents), a
    /// level at a time, many entries in flight. What cannot be copied (FIFOs, sockets, devices,
    /// names that are not UTF-8) is left out and listed; regular files stay sparse.
    pub async fn pull_tree(&self, remote: &str, local: &Path) -> Result<TreePull> {
        let root_attrs = self
            .sftp
            .metadata(remote)
            .await
            .map_err(|e| self.error(remote, e))?;
        if !root_attrs.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "{remote} is not a directory: use pull()"
            )));
        }
        if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::local("create", parent, e))?;
        }
        ensure_real_dir(local, mode_of(&root_attrs))?;
        let root = remote.trim_end_matches('/').to_owned();
        let mut level = vec![(root.clone(), local.to_owned())];
        let mut pulled = TreePull::default();
        while !level.is_empty() {
            let listings: Vec<Vec<Listed>> = stream::iter(level.iter().map(Ok))
                .map_ok(|(dir, target)| self.list(dir, target))
                .try_buffer_unordered(FILES_IN_FLIGHT)
                .try_collect()
                .await?;
            let mut entries = Vec::new();
            for listed in listings.into_iter().flatten() {
                match listed {
                    Listed::Entry(entry) => entries.push(entry),
                    Listed::Skipped(skipped) => pulled.skipped.push(skipped),
                }
            }
            let fetched: Vec<Fetched> = stream::iter(entries.into_iter().map(Ok))
                .map_ok(|entry| self.pull_entry(&root, entry))
                .try_buffer_unordered(FILES_IN_FLIGHT)
                .try_collect()
                .await?;
            level = Vec::new();
            for outcome in fetched {
                match outcome {
                    Fetched::Dir(remote, local) => {
                        pulled.entries += 1;
                        level.push((remote, local));
                    }
                    Fetched::Copied => pulled.entries += 1,
                    Fetched::Skipped(skipped) => pulled.skipped.push(skipped),
                }
            }
        }
        Ok(pulled)
    }

    /// The entries of the remote directory `dir`, each paired with its local path in `target`.
    /// A name that is not UTF-8 arrives with U+FFFD in place of its bad bytes and cannot be
    /// asked for by name: it is left out, unless an entry of that very name exists.
    async fn list(&self, dir: &str, target: &Path) -> Result<Vec<Listed>> {
        let listing = self
            .sftp
            .read_dir(dir)
            .await
            .map_err(|e| self.error(dir, e))?;
        let mut listed = Vec::new();
        for entry in listing {
            let name = entry.file_name();
            if !is_safe_name(&name) {
                return Err(Error::InvalidArgument(format!(
                    "refusing the entry {name:?} of {dir}: not a single path component"
                )));
            }
            let remote = format!("{dir}/{name}");
            if name.contains(char::REPLACEMENT_CHARACTER)
                && self.sftp.symlink_metadata(remote.as_str()).await.is_err()
            {
                listed.push(Listed::Skipped(Skipped {
                    path: remote,
                    reason: "its name is not UTF-8".into(),
                }));
                continue;
            }
            listed.push(Listed::Entry(RemoteEntry {
                remote,
                local: target.join(&name),
                attrs: entry.metadata(),
            }));
        }
        Ok(listed)
    }

    /// Fetches one entry; a directory is created and returned to be listed next.
    async fn pull_entry(&self, root: &str, entry: RemoteEntry) -> Result<Fetched> {
        let RemoteEntry {
            remote,
            local,
            attrs,
        } = entry;
        if attrs.is_dir() {
            ensure_real_dir(&local, mode_of(&attrs))?;
            return Ok(Fetched::Dir(remote, local));
        }
        if attrs.is_symlink() {
            let target = self
                .sftp
                .read_link(remote.as_str())
                .await
                .map_err(|e| self.error(&remote, e))?;
            let target = relative_link(root, &remote, &target);
            remove_non_dir(&local)?;
            std::os::unix::fs::symlink(&target, &local).map_err(|e| {
                Error::InvalidArgument(format!(
                    "cannot create the symlink {}: {e}",
                    local.display()
                ))
            })?;
            return Ok(Fetched::Copied);
        }
        if !attrs.is_regular() {
            let kind = SpecialFile::from_permissions(attrs.permissions)
                .map_or("special file".to_owned(), |kind| kind.to_string());
            return Ok(Fetched::Skipped(Skipped {
                path: remote,
                reason: format!("a {kind} is not a file to copy"),
            }));
        }
        if std::fs::symlink_metadata(&local).is_ok_and(|m| m.is_dir()) {
            return Err(Error::InvalidArgument(format!(
                "{} is a local directory, {remote} a file",
                local.display()
            )));
        }
        let file = self
            .sftp
            .open(remote.as_str())
            .await
            .map_err(|e| self.error(&remote, e))?;
        let body = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK);
        save_stream(body, &local, mode_of(&attrs), None, |e| {
            self.io_error(&remote, e)
        })
        .await?;
        Ok(Fetched::Copied)
    }

    /// Opens the FIFO at `path` for writing and closes it: a reader blocked on it (LXD's files
    /// API, asked to read it) then sees its end instead of holding the instance forever.
    pub async fn release_fifo_reader(&self, path: &str) {
        let opened = self.sftp.open_with_flags(path, OpenFlags::WRITE);
        if let Ok(Ok(mut fifo)) = tokio::time::timeout(FIFO_RELEASE_TIMEOUT, opened).await {
            let _ = tokio::time::timeout(FIFO_RELEASE_TIMEOUT, fifo.shutdown()).await;
        }
    }

    /// The special kind of the entry at `path` (a FIFO, a device, a socket), if it is one.
    pub async fn special_kind_of(&self, path: &str) -> Result<Option<SpecialFile>> {
        let attrs = self
            .sftp
            .symlink_metadata(path)
            .await
            .map_err(|e| self.error(path, e))?;
        Ok(SpecialFile::from_permissions(attrs.permissions))
    }
}

/// The attribute sets that give a new entry `mode` and the caller's owner. Each goes in a
/// request of its own: LXD 5.0.2's server reads a SETSTAT holding both in the wrong order
/// (permissions before uid and gid), so one request would set the mode to the uid.
fn new_entry_attrs(mode: u32, attrs: &WriteAttrs) -> Vec<FileAttributes> {
    let mut sets = vec![FileAttributes {
        permissions: Some(mode),
        ..FileAttributes::empty()
    }];
    if attrs.uid.is_some() || attrs.gid.is_some() {
        sets.push(FileAttributes {
            // SFTP sets both or neither: the one not given stays root's, as LXD's files API does.
            uid: Some(attrs.uid.unwrap_or(0)),
            gid: Some(attrs.gid.unwrap_or(0)),
            ..FileAttributes::empty()
        });
    }
    sets
}

/// The permission bits of remote attributes (0o644 when the server gave none).
fn mode_of(attrs: &FileAttributes) -> u32 {
    attrs.permissions.map_or(0o644, |p| p & 0o7777)
}

/// Walks a local tree breadth-first: its directories (the root first) and everything else.
fn walk_local(local: &Path, remote: &str) -> Result<(Vec<LocalDir>, Vec<LocalLeaf>)> {
    let read_error = |path: &Path, e: std::io::Error| Error::local("read", path, e);
    let root_meta = std::fs::symlink_metadata(local).map_err(|e| read_error(local, e))?;
    if !root_meta.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "{} is not a directory",
            local.display()
        )));
    }
    let root = remote.trim_end_matches('/').to_owned();
    let mut dirs = vec![LocalDir {
        remote: root.clone(),
        mode: root_meta.permissions().mode(),
        depth: 0,
    }];
    let mut leaves = Vec::new();
    let mut queue = std::collections::VecDeque::from([(local.to_owned(), root, 0)]);
    while let Some((dir, remote_dir, depth)) = queue.pop_front() {
        for entry in std::fs::read_dir(&dir).map_err(|e| read_error(&dir, e))? {
            let entry = entry.map_err(|e| read_error(&dir, e))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_str().ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{}: LXD's file API cannot carry a non-UTF-8 name",
                    path.display()
                ))
            })?;
            let meta = std::fs::symlink_metadata(&path).map_err(|e| read_error(&path, e))?;
            let remote = format!("{remote_dir}/{name}");
            if meta.is_dir() {
                dirs.push(LocalDir {
                    remote: remote.clone(),
                    mode: meta.permissions().mode(),
                    depth: depth + 1,
                });
                queue.push_back((path, remote, depth + 1));
            } else {
                leaves.push(LocalLeaf {
                    local: path,
                    remote,
                    meta,
                });
            }
        }
    }
    Ok((dirs, leaves))
}

/// True when `name`, as listed by the instance, is a single safe path component.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// A symlink's target as the local copy of a pulled tree should hold it: an absolute target
/// inside the tree becomes relative, so the copy points into itself.
fn relative_link(root: &str, link: &str, target: &str) -> String {
    let inside = |p: &str| p == root || p.starts_with(&format!("{root}/"));
    if !inside(target) || !inside(link) {
        return target.to_owned();
    }
    let parent: Vec<&str> = link
        .rsplit_once('/')
        .map_or("", |(d, _)| d)
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let to: Vec<&str> = target.split('/').filter(|s| !s.is_empty()).collect();
    let common = parent.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; parent.len() - common];
    parts.extend(&to[common..]);
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// Makes `dir` a real directory: a symlink (or file) there is replaced, never followed.
fn ensure_real_dir(dir: &Path, mode: u32) -> Result<()> {
    let local_error = |e: std::io::Error| Error::local("create", dir, e);
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => std::fs::remove_file(dir).map_err(local_error)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(local_error(e)),
    }
    std::fs::create_dir(dir).map_err(local_error)?;
    std::fs::set_permissions(
        dir,
        std::fs::Permissions::from_mode((mode & 0o7777) | 0o700),
    )
    .map_err(local_error)
}

/// Removes whatever non-directory is at `path` (a symlink is removed, not followed).
fn remove_non_dir(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::InvalidArgument(format!(
            "{} is a local directory",
            path.display()
        ))),
        Ok(_) => std::fs::remove_file(path).map_err(|e| Error::local("replace", path, e)),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_inside_the_tree_become_relative() {
        assert_eq!(
            relative_link("/srv/t", "/srv/t/link", "/srv/t/a.txt"),
            "a.txt"
        );
        assert_eq!(
            relative_link("/srv/t", "/srv/t/sub/link", "/srv/t/a.txt"),
            "../a.txt"
        );
        assert_eq!(
            relative_link("/srv/t", "/srv/t/link", "/srv/t/sub/b"),
            "sub/b"
        );
        assert_eq!(relative_link("/srv/t", "/srv/t/link", "/srv/t"), ".");
        assert_eq!(
            relative_link("/srv/t", "/srv/t/link", "/etc/passwd"),
            "/etc/passwd"
        );
        assert_eq!(
            relative_link("/srv/t", "/srv/t/link", "/srv/tree"),
            "/srv/tree"
        );
    }

    proptest::proptest! {
        /// Any name is judged, never a panic; a name judged safe stays one component.
        #[test]
        fn any_name_is_judged(name in ".{0,20}") {
            if is_safe_name(&name) {
                proptest::prop_assert!(!name.contains('/') && name != ".." && name != ".");
            }
        }
    }

    #[test]
    fn only_single_components_are_safe() {
        for bad in ["", ".", "..", "a/b", "/etc", "a\0b"] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
        for good in ["a", ".hidden", "with space", "new\nline", "...", "é"] {
            assert!(is_safe_name(good), "{good:?}");
        }
    }

    #[test]
    fn local_symlinks_are_replaced_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("sub");
        std::os::unix::fs::symlink(outside.path(), &link).expect("symlink");
        ensure_real_dir(&link, 0o755).expect("replaced");
        assert!(std::fs::symlink_metadata(&link).expect("meta").is_dir());
        assert!(outside.path().exists());
    }
}
