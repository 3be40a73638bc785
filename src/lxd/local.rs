//! Local files written from downloads: into a temporary file beside the target (never through a
//! symlink), renamed into place only when complete, so a failed transfer leaves nothing under
//! the final name.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::os::unix::fs::OpenOptionsExt;
use tokio_util::task::AbortOnDropHandle;

use super::body::Body;
use super::error::{Error, Result};

/// Reports transferred bytes (for progress bars).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// A local file as a streamed request body (and its length): read in 256 KiB chunks as the
/// server takes them, reporting the bytes sent to `progress`.
pub async fn file_body(path: &Path, progress: Option<Progress>) -> Result<(Body, u64)> {
    use futures_util::TryStreamExt;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::local("read", path, e))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| Error::local("stat", path, e))?
        .len();
    let mut sent = 0u64;
    let stream =
        tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).inspect_ok(move |chunk| {
            sent += chunk.len() as u64;
            if let Some(p) = &progress {
                p(sent);
            }
        });
    Ok((Body::stream(stream), len))
}

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The hidden name a transfer to `name` writes first (`.NAME.PID-N.partial`), unique in this
/// process, so that only a complete file ever takes `name`: downloads here and atomic pushes in
/// an instance use it.
pub fn partial_name(name: &str) -> String {
    format!(
        ".{name}.{}-{}.partial",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The temporary files of the downloads in flight. A writer notes its file here when it creates
/// it and forgets it once the file is renamed into place or removed; when the process ends
/// before that (Ctrl-C), [`remove_partial_files`] removes what is left.
static PARTIAL_FILES: Mutex<PartialFiles> = Mutex::new(PartialFiles {
    paths: Vec::new(),
    closing: false,
});

struct PartialFiles {
    paths: Vec<PathBuf>,
    /// Set by [`remove_partial_files`]: no new temporary file may be created after it.
    closing: bool,
}

fn partial_files() -> std::sync::MutexGuard<'static, PartialFiles> {
    PARTIAL_FILES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes the temporary files of downloads still in flight, and refuses new ones: called as
/// the process ends, so that a Ctrl-C mid-transfer leaves nothing behind whatever stage the
/// transfer was in.
pub fn remove_partial_files() {
    let mut partial = partial_files();
    partial.closing = true;
    for path in partial.paths.drain(..) {
        let _ = std::fs::remove_file(path);
    }
}

/// Creates the temporary file `temp` (never through a symlink) and notes it as partial.
fn create_partial(temp: &Path) -> Result<std::fs::File> {
    let mut partial = partial_files();
    if partial.closing {
        return Err(Error::Cancelled);
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .mode(0o600)
        .open(temp)
        .map_err(|e| local_error(e, temp))?;
    partial.paths.push(temp.to_owned());
    Ok(file)
}

/// Forgets `temp` once it is in place or removed.
fn forget_partial(temp: &Path) {
    partial_files().paths.retain(|p| p != temp);
}

/// How much of a download is handed to the writer at once, and written with one `write`.
const BATCH_BYTES: usize = 1 << 20;

/// Buffers queued for the writer at most.
const QUEUED_BATCHES: usize = 4;

fn local_error(e: std::io::Error, what: &Path) -> Error {
    Error::local("write", what, e)
}

/// What the receiving side hands the writer thread.
enum Batch {
    /// The next bytes of the body.
    Bytes(Vec<u8>),
    /// The body ended complete: the file may be put in place.
    End,
}

/// Streams `body` into `local` with permission bits `mode`; returns the bytes written.
///
/// The body is received here and gathered into buffers of a megabyte that one blocking thread
/// writes and hands back: the same few buffers go round, so the network side's own buffers are
/// freed at once and reused (keeping chunks instead makes it fault in fresh memory all along).
/// The writer thread owns the temporary file's fate: a transfer that fails, or is dropped
/// half-way (Ctrl-C), leaves nothing behind.
pub async fn save_stream<S, E, F>(
    body: S,
    local: &Path,
    mode: u32,
    progress: Option<Progress>,
    transfer_error: F,
) -> Result<u64>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    F: Fn(E) -> Error,
{
    let name = local
        .file_name()
        .unwrap_or(OsStr::new("file"))
        .to_string_lossy();
    let temp = local.with_file_name(partial_name(&name));
    let (batches, queue) = tokio::sync::mpsc::channel::<Batch>(QUEUED_BATCHES);
    let (spare, spares) = std::sync::mpsc::channel::<Vec<u8>>();
    let writer = {
        let (temp, local) = (temp, local.to_owned());
        tokio::task::spawn_blocking(move || {
            let result = write_batches(queue, spare, &temp, &local, mode);
            if result.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            forget_partial(&temp);
            result
        })
    };
    let received = receive(body, batches, spares, progress, transfer_error).await;
    let written = writer.await.map_err(|e| {
        Error::InvalidArgument(format!("the writer of {} stopped: {e}", local.display()))
    })?;
    // A failed body outranks the writer's result: the file is incomplete either way.
    let total = received?;
    written.map(|()| total)
}

/// [`save_stream`] on a task of the runtime, for a big body: the task receives next to the
/// connection's own task, so chunks pass between them without waking the calling thread. The
/// task is aborted if the caller is dropped.
pub async fn save_stream_on_task<S, E, F>(
    body: S,
    local: &Path,
    mode: u32,
    progress: Option<Progress>,
    transfer_error: F,
) -> Result<u64>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
    F: Fn(E) -> Error + Send + 'static,
{
    let local = local.to_owned();
    let task =
        tokio::spawn(
            async move { save_stream(body, &local, mode, progress, transfer_error).await },
        );
    AbortOnDropHandle::new(task)
        .await
        .map_err(|e| Error::InvalidArgument(format!("the download stopped: {e}")))?
}

/// Reads the body into buffers for the writer (reusing the ones it hands back); sends the end
/// marker only if the body ended complete. A closed queue means the writer failed (its error
/// is the one to report).
async fn receive<S, E, F>(
    mut body: S,
    batches: tokio::sync::mpsc::Sender<Batch>,
    spares: std::sync::mpsc::Receiver<Vec<u8>>,
    progress: Option<Progress>,
    transfer_error: F,
) -> Result<u64>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    F: Fn(E) -> Error,
{
    let mut total = 0u64;
    let mut buffer = Vec::with_capacity(BATCH_BYTES);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(&transfer_error)?;
        total += chunk.len() as u64;
        buffer.extend_from_slice(&chunk);
        if buffer.len() >= BATCH_BYTES {
            let next = spares
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES));
            let full = std::mem::replace(&mut buffer, next);
            if batches.send(Batch::Bytes(full)).await.is_err() {
                return Ok(total);
            }
            if let Some(p) = &progress {
                p(total);
            }
        }
    }
    if !buffer.is_empty() && batches.send(Batch::Bytes(buffer)).await.is_err() {
        return Ok(total);
    }
    let _ = batches.send(Batch::End).await;
    if let Some(p) = &progress {
        p(total);
    }
    Ok(total)
}

/// The writer thread: creates `temp` (never through a symlink), writes each buffer and hands it
/// back, and on the end marker gives the file its mode and renames it to `local`. A queue that
/// closes without the marker is an abandoned transfer.
fn write_batches(
    mut queue: tokio::sync::mpsc::Receiver<Batch>,
    spare: std::sync::mpsc::Sender<Vec<u8>>,
    temp: &Path,
    local: &Path,
    mode: u32,
) -> Result<()> {
    release_cached(local);
    let file = create_partial(temp)?;
    let mut length = 0u64;
    loop {
        match queue.blocking_recv() {
            Some(Batch::Bytes(mut buffer)) => {
                write_sparse(&file, &buffer, length).map_err(|e| local_error(e, temp))?;
                length += buffer.len() as u64;
                buffer.clear();
                let _ = spare.send(buffer);
            }
            Some(Batch::End) => break,
            None => return Err(Error::Cancelled),
        }
    }
    // Trailing zeros were skipped: the length says where the file ends.
    file.set_len(length).map_err(|e| local_error(e, temp))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| local_error(e, temp))?;
    put_in_place(temp, local)
}

/// The block size of holes: an aligned block of this many zero bytes is skipped, not written,
/// so a sparse file stays sparse (a 4 GiB one was written fully allocated).
const HOLE_BLOCK: u64 = 4096;

/// Writes `buffer` at `offset` of `file`, leaving each aligned [`HOLE_BLOCK`] of zeros as a
/// hole. Data without zero blocks costs one failed comparison per block and one write.
fn write_sparse(file: &std::fs::File, buffer: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let end = offset + buffer.len() as u64;
    let slice = |from: u64, to: u64| &buffer[(from - offset) as usize..(to - offset) as usize];
    // The data not yet written starts at `pending`; blocks run between aligned boundaries.
    let mut pending = offset;
    let mut block_start = offset;
    while block_start < end {
        let block_end = ((block_start / HOLE_BLOCK + 1) * HOLE_BLOCK).min(end);
        if block_end - block_start == HOLE_BLOCK && is_zero(slice(block_start, block_end)) {
            if pending < block_start {
                file.write_all_at(slice(pending, block_start), pending)?;
            }
            pending = block_end;
        }
        block_start = block_end;
    }
    if pending < end {
        file.write_all_at(slice(pending, end), pending)?;
    }
    Ok(())
}

/// True when every byte is zero (compared 16 at a time).
fn is_zero(block: &[u8]) -> bool {
    let mut words = block.chunks_exact(16);
    words
        .by_ref()
        .all(|w| u128::from_ne_bytes(w.try_into().unwrap_or([1; 16])) == 0)
        && words.remainder().iter().all(|&b| b == 0)
}

/// Files modified longer ago than this (the kernel's default `dirty_expire_centisecs`) are taken
/// to be written out: dropping their cache frees memory at once.
const WRITTEN_OUT_AFTER: Duration = Duration::from_secs(30);

/// Drops the page cache of the regular file at `local`, which the download is about to replace,
/// so that the new file's pages reuse that memory. Until the swap the previous version stays
/// whole on disk; only its cached copy goes. Without this, a pull over a file of the same size
/// needs as much memory again, and first touching that memory made 1 GB pulls slower on a VM
/// (see `scripts/bench/NOTES.md`). A recently written file is left alone:
/// advising its cache away would first write out data that is about to be deleted.
fn release_cached(local: &Path) {
    let written_out = std::fs::symlink_metadata(local).is_ok_and(|m| {
        m.is_file()
            && m.modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= WRITTEN_OUT_AFTER)
    });
    if !written_out {
        return;
    }
    advise_dont_need(local);
}

/// Asks the kernel to drop the cached pages of the file at `local` (Linux); elsewhere nothing.
#[cfg(target_os = "linux")]
fn advise_dont_need(local: &Path) {
    use rustix::fs::{Advice, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    if let Ok(previous) = rustix::fs::open(local, flags, Mode::empty()) {
        // Only advice: a failure leaves the cache as it was.
        let _ = rustix::fs::fadvise(&previous, 0, None, Advice::DontNeed);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_dont_need(_local: &Path) {}

/// Moves the complete temporary file to `local`, replacing what is there atomically: at every
/// moment `local` is the previous file or the new one, never a part.
///
/// A regular file already at `local` is swapped with the new one (`renameat2` with
/// `RENAME_EXCHANGE`) and then removed. A plain rename over it would be as atomic, but ext4
/// then starts writing the new file to disk before the rename returns (its `auto_da_alloc`
/// safeguard), which the swap does not (see `scripts/bench/NOTES.md`). Anything else (no
/// file, a symlink, which is replaced itself and never written through) is renamed.
fn put_in_place(temp: &Path, local: &Path) -> Result<()> {
    let replaces_a_file = std::fs::symlink_metadata(local).is_ok_and(|m| m.file_type().is_file());
    if replaces_a_file && exchange(temp, local).is_ok() {
        // `temp` now names the previous file.
        return std::fs::remove_file(temp).map_err(|e| {
            Error::InvalidArgument(format!(
                "{} is in place, but its previous version could not be removed from {}: {e}",
                local.display(),
                temp.display()
            ))
        });
    }
    std::fs::rename(temp, local).map_err(|e| local_error(e, local))
}

/// Swaps two directory entries atomically (Linux 3.15+; fails where the filesystem cannot).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

/// No atomic swap here: the caller renames over the old file instead.
#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn zeros_become_holes_and_the_content_is_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("sparse");
        // 8 MiB: data at odd offsets around long runs of zeros, ending in zeros.
        let mut content = vec![0u8; 8 << 20];
        content[100..5000].fill(7);
        content[3 << 20] = 1;
        content[(5 << 20) + 4095] = 2;
        let chunks: Vec<std::result::Result<Bytes, &str>> = content
            .chunks(300_001)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        save_stream(
            futures_util::stream::iter(chunks),
            &target,
            0o644,
            None,
            |e| Error::InvalidArgument(e.to_owned()),
        )
        .await
        .expect("saved");
        assert_eq!(std::fs::read(&target).expect("read"), content);
        let allocated = std::fs::metadata(&target).expect("meta").blocks() * 512;
        assert!(allocated < 1 << 20, "{allocated} bytes allocated");
    }

    #[tokio::test]
    async fn a_failed_stream_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out");
        let chunks: Vec<std::result::Result<Bytes, &str>> =
            vec![Ok(Bytes::from_static(b"part")), Err("reset")];
        let result = save_stream(
            futures_util::stream::iter(chunks),
            &target,
            0o644,
            None,
            |e| Error::Connection {
                endpoint: "test".into(),
                source: e.into(),
            },
        )
        .await;
        assert!(result.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[tokio::test]
    async fn an_abandoned_stream_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out");
        let first: Vec<std::result::Result<Bytes, &str>> = vec![Ok(Bytes::from_static(b"part"))];
        // One chunk, then a body that never ends: the transfer is dropped, as Ctrl-C does.
        let body = futures_util::stream::iter(first).chain(futures_util::stream::pending());
        let transfer = save_stream(body, &target, 0o644, None, |_| Error::Cancelled);
        let dropped = tokio::time::timeout(std::time::Duration::from_millis(200), transfer).await;
        assert!(dropped.is_err(), "the body never ends");
        // The writer thread removes its temporary file once it sees the queue closed.
        for _ in 0..100 {
            if std::fs::read_dir(dir.path()).expect("dir").count() == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("a temporary file was left behind");
    }

    #[tokio::test]
    async fn a_file_is_replaced_and_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let save = |target: std::path::PathBuf, body: &'static [u8]| async move {
            let chunks: Vec<std::result::Result<Bytes, &str>> = vec![Ok(Bytes::from_static(body))];
            save_stream(
                futures_util::stream::iter(chunks),
                &target,
                0o644,
                None,
                |_| Error::Cancelled,
            )
            .await
        };
        let file = dir.path().join("file");
        std::fs::write(&file, b"previous, longer content").expect("write");
        save(file.clone(), b"new").await.expect("replaced");
        assert_eq!(std::fs::read(&file).expect("read"), b"new");

        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, b"untouched").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).expect("symlink");
        save(link.clone(), b"new").await.expect("link replaced");
        assert!(std::fs::symlink_metadata(&link).expect("meta").is_file());
        assert_eq!(std::fs::read(&elsewhere).expect("read"), b"untouched");

        let subdir = dir.path().join("subdir");
        std::fs::create_dir(&subdir).expect("mkdir");
        assert!(save(subdir.clone(), b"new").await.is_err());
        assert!(subdir.is_dir());
        // Nothing is left behind: the file, the link, the other file and the directory.
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 4);
    }

    #[tokio::test]
    async fn a_complete_stream_lands_with_its_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out");
        let chunks: Vec<std::result::Result<Bytes, &str>> =
            vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"c"))];
        let n = save_stream(
            futures_util::stream::iter(chunks),
            &target,
            0o640,
            None,
            |_| Error::Cancelled,
        )
        .await
        .expect("saved");
        assert_eq!(n, 3);
        assert_eq!(std::fs::read(&target).expect("read"), b"abc");
        assert_eq!(
            std::fs::metadata(&target)
                .expect("meta")
                .permissions()
                .mode()
                & 0o777,
            0o640
        );
    }
}
