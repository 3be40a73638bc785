//! Local files written from downloads: into a temporary file beside the target (never through a
//! symlink), renamed into place only when complete, so a failed transfer leaves nothing under
//! the final name.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::error::{Error, Result};

/// Reports transferred bytes (for progress bars).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How much of a download is gathered before it goes to disk.
const WRITE_BUFFER: usize = 1 << 20;

fn local_error(e: std::io::Error, what: &Path) -> Error {
    Error::InvalidArgument(format!("cannot write {}: {e}", what.display()))
}

/// Streams `body` into `local` with permission bits `mode`; returns the bytes written.
pub async fn save_stream<S, E>(
    mut body: S,
    local: &Path,
    mode: u32,
    progress: Option<Progress>,
    transfer_error: impl Fn(E) -> Error,
) -> Result<u64>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
{
    let name = local
        .file_name()
        .unwrap_or(OsStr::new("file"))
        .to_string_lossy();
    let temp = local.with_file_name(format!(
        ".{name}.{}-{}.partial",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = async {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&temp)
            .await
            .map_err(|e| local_error(e, &temp))?;
        // The body arrives in small chunks, and each write to a tokio file is a trip to the
        // blocking pool: gather a megabyte per trip.
        let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut total = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(&transfer_error)?;
            file.write_all(&chunk)
                .await
                .map_err(|e| local_error(e, &temp))?;
            total += chunk.len() as u64;
            if let Some(p) = &progress {
                p(total);
            }
        }
        file.flush().await.map_err(|e| local_error(e, &temp))?;
        tokio::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode & 0o7777))
            .await
            .map_err(|e| local_error(e, &temp))?;
        // rename() replaces a symlink at `local` itself; it never writes through it.
        tokio::fs::rename(&temp, local)
            .await
            .map_err(|e| local_error(e, local))?;
        Ok(total)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

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
                message: e.to_owned(),
            },
        )
        .await;
        assert!(result.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
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
