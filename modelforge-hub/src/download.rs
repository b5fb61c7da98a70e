//! Fetching one file into the cache: locked, resumable, verified.
//!
//! The content goes to `blobs/{etag}.incomplete` and only becomes `blobs/{etag}` once its
//! hash matches the etag the Hub announced, so a file under its real name is always whole and
//! correct. An interrupted download keeps its `.incomplete` file, and the next attempt asks
//! for the rest with `Range` (re-hashing the part already on disk, which is much faster than
//! fetching it again). A lock file per blob, the one huggingface_hub uses, keeps two processes
//! from writing the same blob.
//!
//! Receiving, writing and hashing overlap: one thread reads the connection into 1 MiB buffers,
//! the caller's thread writes them, and a third hashes them, so SHA-256 costs little wall time
//! when there is a spare core.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use modelforge_core::{CancelToken, HubError, Progress};
use sha2::Digest as _;
use ureq::http::StatusCode;

use crate::api::{Api, FileMetadata, read_full};
use crate::cache::{HfCache, io_error};

/// The size of one read from the connection, and of one write to disk.
const BUFFER_SIZE: usize = 1 << 20;
/// Buffers in flight between the receiving thread and the writer.
const BUFFERS: usize = 4;

/// How often a transfer waiting for data looks at its cancel token.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// A buffer and how much of it the receiving thread filled, or why it stopped.
type Filled = io::Result<(Vec<u8>, usize)>;

/// One file to fetch.
pub(crate) struct FileRequest<'a> {
    pub(crate) repo: &'a str,
    pub(crate) revision: &'a str,
    pub(crate) file: &'a str,
}

/// Fetches `request.file` into the cache unless its blob is already there, links it into the
/// snapshot of the commit the revision points at, records the ref, and returns the snapshot
/// path and the commit.
pub(crate) fn fetch_file(
    api: &Api,
    cache: &HfCache,
    request: &FileRequest<'_>,
    on_progress: &mut dyn FnMut(Progress),
    cancel: &CancelToken,
) -> Result<(PathBuf, String), HubError> {
    let FileRequest { repo, revision, file } = *request;
    let span = tracing::info_span!("download", repo, file, revision);
    let _entered = span.enter();
    if cancel.is_cancelled() {
        return Err(HubError::Cancelled);
    }
    let meta = api.file_metadata(repo, revision, file)?;
    let blob = cache.blob_path(repo, &meta.etag);
    if !blob.exists() {
        let _lock = lock(&cache.lock_path(repo, &meta.etag), cancel)?;
        // Another process may have finished it while this one waited.
        if !blob.exists() {
            download_blob(api, request, &meta, &blob, on_progress, cancel)?;
        }
    }
    let size = blob.metadata().map_err(|e| io_error(&blob, "reading", e))?.len();
    on_progress(Progress { downloaded: size, total: Some(size) });
    let path = cache
        .link_snapshot(repo, &meta.commit, file, &meta.etag)
        .map_err(|e| io_error(&cache.snapshot_path(repo, &meta.commit, file), "linking", e))?;
    cache
        .set_ref(repo, revision, &meta.commit)
        .map_err(|e| io_error(&cache.repo_dir(repo), "writing a ref in", e))?;
    Ok((path, meta.commit))
}

/// Takes the lock file at `path`, waiting (cancellably) while another process holds it.
fn lock(path: &Path, cancel: &CancelToken) -> Result<File, HubError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "creating", e))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| io_error(path, "opening the lock file", e))?;
    let mut waiting = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !waiting {
                    tracing::info!(lock = %path.display(), "another process is downloading this file; waiting for it");
                    waiting = true;
                }
                if cancel.is_cancelled() {
                    return Err(HubError::Cancelled);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(path, "locking", e)),
        }
    }
}

/// Downloads into `{blob}.incomplete`, resuming it if present, verifies it and renames it to
/// `blob`.
fn download_blob(
    api: &Api,
    request: &FileRequest<'_>,
    meta: &FileMetadata,
    blob: &Path,
    on_progress: &mut dyn FnMut(Progress),
    cancel: &CancelToken,
) -> Result<(), HubError> {
    let partial = blob.with_file_name(format!("{}.incomplete", meta.etag));
    let dir = blob.parent().expect("a blob has a directory");
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "creating", e))?;
    if let Some(size) = meta.size {
        let have = std::fs::metadata(&partial).map_or(0, |m| m.len());
        // More on disk than the file's size means starting over (below), so all of it.
        ensure_space(dir, &partial, size.checked_sub(have).unwrap_or(size))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&partial)
        .map_err(|e| io_error(&partial, "opening", e))?;
    let mut hasher = ContentHash::for_etag(&meta.etag, meta.size);
    let mut offset = file.metadata().map_err(|e| io_error(&partial, "reading", e))?.len();
    if meta.size.is_some_and(|size| offset > size) {
        offset = restart(&mut file, &partial, &mut hasher)?;
    }
    if offset > 0 {
        tracing::info!(bytes = offset, "resuming an interrupted download");
        hash_existing(&mut file, &partial, offset, &mut hasher, on_progress, meta.size)?;
    }
    let started = Instant::now();
    let mut received = 0;
    if meta.size != Some(offset) {
        let (status, headers, body) =
            api.open(&meta.location, offset, (request.repo, request.revision, request.file))?;
        let resumed_at = content_range_start(&headers);
        if offset > 0 && (status != StatusCode::PARTIAL_CONTENT || resumed_at != Some(offset)) {
            // The server ignored the range (or answered 416): what is on disk cannot be trusted
            // to line up, so this attempt starts over.
            tracing::info!(%status, "the server did not resume; starting over");
            restart(&mut file, &partial, &mut hasher)?;
            drop(body);
            return finish_fresh(api, request, meta, blob, &partial, file, hasher, on_progress, cancel);
        }
        file.seek(io::SeekFrom::Start(offset)).map_err(|e| io_error(&partial, "seeking in", e))?;
        received = receive(
            body,
            &mut file,
            &mut hasher,
            &mut Transfer { request, meta, partial: &partial, offset, on_progress, cancel },
        )?;
    }
    tracing::info!(bytes = received, secs = started.elapsed().as_secs_f64(), "received");
    verify_and_keep(request, meta, blob, &partial, file, hasher)
}

/// The download from byte 0, after a server would not resume.
#[allow(clippy::too_many_arguments)]
fn finish_fresh(
    api: &Api,
    request: &FileRequest<'_>,
    meta: &FileMetadata,
    blob: &Path,
    partial: &Path,
    mut file: File,
    mut hasher: ContentHash,
    on_progress: &mut dyn FnMut(Progress),
    cancel: &CancelToken,
) -> Result<(), HubError> {
    let (_, _, body) = api.open(&meta.location, 0, (request.repo, request.revision, request.file))?;
    receive(
        body,
        &mut file,
        &mut hasher,
        &mut Transfer { request, meta, partial, offset: 0, on_progress, cancel },
    )?;
    verify_and_keep(request, meta, blob, partial, file, hasher)
}

/// Empties the partial file and the hash.
fn restart(file: &mut File, partial: &Path, hasher: &mut ContentHash) -> Result<u64, HubError> {
    file.set_len(0).map_err(|e| io_error(partial, "truncating", e))?;
    file.seek(io::SeekFrom::Start(0)).map_err(|e| io_error(partial, "seeking in", e))?;
    hasher.reset();
    Ok(0)
}

/// Hashes the `len` bytes already in the partial file.
fn hash_existing(
    file: &mut File,
    partial: &Path,
    len: u64,
    hasher: &mut ContentHash,
    on_progress: &mut dyn FnMut(Progress),
    total: Option<u64>,
) -> Result<(), HubError> {
    file.seek(io::SeekFrom::Start(0)).map_err(|e| io_error(partial, "seeking in", e))?;
    let mut buf = vec![0; BUFFER_SIZE];
    let mut done = 0;
    let mut reader = file.take(len);
    loop {
        let n = read_full(&mut reader, &mut buf).map_err(|e| io_error(partial, "reading", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        on_progress(Progress { downloaded: done, total });
    }
    Ok(())
}

/// The context of one transfer.
struct Transfer<'a, 'b> {
    request: &'a FileRequest<'a>,
    meta: &'a FileMetadata,
    partial: &'a Path,
    offset: u64,
    on_progress: &'b mut dyn FnMut(Progress),
    cancel: &'a CancelToken,
}

/// Copies the body into `file` from the current position, hashing as it goes. Returns the
/// bytes received.
///
/// Three stages overlap, each on its own thread: receiving (a spawned thread), writing (this
/// one) and hashing (another spawned thread), passing 1 MiB buffers along and back.
fn receive(
    body: ureq::BodyReader<'static>,
    file: &mut File,
    hasher: &mut ContentHash,
    t: &mut Transfer<'_, '_>,
) -> Result<u64, HubError> {
    let (full, empty) = spawn_receiver(body);
    let (to_hash, hashing) = spawn_hasher(std::mem::replace(hasher, ContentHash::Unknown), empty);
    let mut received = 0;
    let total = t.meta.size;
    loop {
        // Waiting in slices, so a cancel is seen even while the connection is silent.
        let (buf, n) = match full.recv_timeout(CANCEL_POLL) {
            Ok(Ok(filled)) => filled,
            Ok(Err(e)) => return Err(cut(t, received, e)),
            Err(RecvTimeoutError::Timeout) if t.cancel.is_cancelled() => return Err(cancelled(t, received)),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        file.write_all(&buf[..n]).map_err(|e| {
            write_error(t.partial, total.map(|size| size.saturating_sub(t.offset + received)), e)
        })?;
        received += n as u64;
        (t.on_progress)(Progress { downloaded: t.offset + received, total });
        if t.cancel.is_cancelled() {
            return Err(cancelled(t, received));
        }
        if to_hash.send((buf, n)).is_err() {
            break; // Only if the hashing thread died: joining it below reports that.
        }
    }
    drop(to_hash);
    *hasher = hashing.join().expect("the hashing thread does not panic");
    let have = t.offset + received;
    if total.is_some_and(|size| have < size) {
        let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed early");
        return Err(cut(t, received, e));
    }
    Ok(received)
}

/// Starts a thread that hashes the buffers it is sent, then hands them back to the receiver.
/// It returns the hash state when the sending side is dropped.
fn spawn_hasher(
    mut hasher: ContentHash,
    recycle: SyncSender<Vec<u8>>,
) -> (SyncSender<(Vec<u8>, usize)>, std::thread::JoinHandle<ContentHash>) {
    let (tx, rx) = sync_channel::<(Vec<u8>, usize)>(BUFFERS);
    let handle = std::thread::spawn(move || {
        for (buf, n) in rx {
            hasher.update(&buf[..n]);
            // The receiver may have stopped already; then the buffer is simply dropped.
            let _ = recycle.send(buf);
        }
        hasher
    });
    (tx, handle)
}

/// Starts a thread that reads `body` into recycled buffers. It ends at the end of the body,
/// on an error, or when the receiving side is dropped (the download was cancelled).
fn spawn_receiver(mut body: ureq::BodyReader<'static>) -> (Receiver<Filled>, SyncSender<Vec<u8>>) {
    let (full_tx, full_rx) = sync_channel(BUFFERS);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        empty_tx.send(vec![0; BUFFER_SIZE]).expect("the channel has room");
    }
    std::thread::spawn(move || {
        while let Ok(mut buf) = empty_rx.recv() {
            let message = match read_full(&mut body, &mut buf) {
                Ok(0) => break,
                Ok(n) => Ok((buf, n)),
                Err(e) => Err(e),
            };
            let failed = message.is_err();
            if full_tx.send(message).is_err() || failed {
                break;
            }
        }
    });
    (full_rx, empty_tx)
}

/// A cancelled transfer: the partial file stays for the next attempt to resume.
fn cancelled(t: &Transfer<'_, '_>, received: u64) -> HubError {
    tracing::info!(bytes = t.offset + received, "download cancelled; the partial file is kept for resuming");
    HubError::Cancelled
}

fn cut(t: &Transfer<'_, '_>, received: u64, source: io::Error) -> HubError {
    let have = t.offset + received;
    let of = t.meta.size.map_or_else(String::new, |s| format!(" of {s}"));
    HubError::Network {
        context: format!(
            "downloading {} of {} (stopped at {have}{of} bytes; run again to resume from there)",
            t.request.file, t.request.repo
        ),
        source: Box::new(source),
    }
}

fn write_error(partial: &Path, remaining: Option<u64>, e: io::Error) -> HubError {
    if matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded) {
        HubError::DiskFull { path: partial.to_owned(), needed: remaining, source: e }
    } else {
        io_error(partial, "writing", e)
    }
}

/// Fails with [`HubError::DiskFull`] when the filesystem holding `dir` has less room than the
/// `remaining` bytes, before a single one is requested: better than failing gigabytes in. If the
/// free space cannot be read, the download goes ahead and [`write_error`] reports a full disk.
fn ensure_space(dir: &Path, partial: &Path, remaining: u64) -> Result<(), HubError> {
    let Some(free) = free_space(dir) else { return Ok(()) };
    if free >= remaining {
        return Ok(());
    }
    let message = format!("{free} bytes free in {}, {remaining} needed", dir.display());
    Err(HubError::DiskFull {
        path: partial.to_owned(),
        needed: Some(remaining),
        source: io::Error::new(io::ErrorKind::StorageFull, message),
    })
}

/// The bytes an unprivileged process may still write on the filesystem holding `dir`.
#[cfg(unix)]
fn free_space(dir: &Path) -> Option<u64> {
    match rustix::fs::statvfs(dir) {
        Ok(stat) => {
            let unit = if stat.f_frsize > 0 { stat.f_frsize } else { stat.f_bsize };
            Some(stat.f_bavail.saturating_mul(unit))
        }
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "cannot read the free space; downloading anyway");
            None
        }
    }
}

#[cfg(not(unix))]
fn free_space(_dir: &Path) -> Option<u64> {
    None
}

/// Checks the size and hash; keeps the file as `blob` if they match, else deletes it.
fn verify_and_keep(
    request: &FileRequest<'_>,
    meta: &FileMetadata,
    blob: &Path,
    partial: &Path,
    file: File,
    hasher: ContentHash,
) -> Result<(), HubError> {
    let len = file.metadata().map_err(|e| io_error(partial, "reading", e))?.len();
    drop(file);
    let mismatch = |algorithm: &'static str, expected: String, actual: String| {
        let _ = std::fs::remove_file(partial);
        tracing::warn!(algorithm, %expected, %actual, "deleted a corrupt download");
        HubError::ChecksumMismatch {
            repo: request.repo.to_owned(),
            file: request.file.to_owned(),
            algorithm,
            expected,
            actual,
        }
    };
    if let Some(size) = meta.size.filter(|&size| size != len) {
        return Err(mismatch("size", size.to_string(), len.to_string()));
    }
    if let Some((algorithm, actual)) = hasher.finish() {
        if actual != meta.etag {
            return Err(mismatch(algorithm, meta.etag.clone(), actual));
        }
    } else {
        tracing::warn!(etag = %meta.etag, "the Hub's etag is not a known hash: the content was not verified");
    }
    std::fs::rename(partial, blob).map_err(|e| io_error(blob, "renaming the finished download to", e))
}

/// The start of a `Content-Range: bytes START-END/TOTAL` answer.
fn content_range_start(headers: &ureq::http::HeaderMap) -> Option<u64> {
    let value = headers.get("content-range")?.to_str().ok()?;
    value.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

/// The hash an etag is: the sha256 of an LFS file, or the git blob sha1 of a small file.
enum ContentHash {
    Sha256(sha2::Sha256),
    GitSha1(sha1::Sha1, u64),
    Unknown,
}

impl ContentHash {
    fn for_etag(etag: &str, size: Option<u64>) -> Self {
        let hex = etag.bytes().all(|b| b.is_ascii_hexdigit());
        let mut hash = match (etag.len(), size) {
            (64, _) if hex => ContentHash::Sha256(sha2::Sha256::new()),
            (40, Some(size)) if hex => ContentHash::GitSha1(sha1::Sha1::new(), size),
            _ => ContentHash::Unknown,
        };
        hash.reset();
        hash
    }

    fn reset(&mut self) {
        match self {
            ContentHash::Sha256(h) => h.reset(),
            ContentHash::GitSha1(h, size) => {
                h.reset();
                h.update(format!("blob {size}\0").as_bytes());
            }
            ContentHash::Unknown => {}
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            ContentHash::Sha256(h) => h.update(bytes),
            ContentHash::GitSha1(h, _) => h.update(bytes),
            ContentHash::Unknown => {}
        }
    }

    /// The algorithm's name and the hex digest.
    fn finish(self) -> Option<(&'static str, String)> {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        match self {
            ContentHash::Sha256(h) => Some(("sha256", hex(&h.finalize()))),
            ContentHash::GitSha1(h, _) => Some(("git-sha1", hex(&h.finalize()))),
            ContentHash::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_sha1_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let mut hash = ContentHash::for_etag("ce013625030ba8dba906f756967f9e9ca394464a", Some(6));
        hash.update(b"hello\n");
        assert_eq!(hash.finish().unwrap().1, "ce013625030ba8dba906f756967f9e9ca394464a");
    }

    #[test]
    fn a_full_disk_is_reported_as_such() {
        let full = io::Error::from(io::ErrorKind::StorageFull);
        let err = write_error(Path::new("/cache/blobs/x.incomplete"), Some(42), full);
        assert!(matches!(err, HubError::DiskFull { needed: Some(42), .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("not enough disk space for /cache/blobs/x.incomplete (42 more bytes needed)"),
            "{err}"
        );
        let other = write_error(Path::new("/x"), None, io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(matches!(other, HubError::Io { .. }), "{other:?}");
    }

    #[test]
    fn too_little_free_space_fails_before_the_download() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("x.incomplete");
        ensure_space(dir.path(), &partial, 0).unwrap();
        let err = ensure_space(dir.path(), &partial, u64::MAX).unwrap_err();
        assert!(matches!(&err, HubError::DiskFull { needed: Some(u64::MAX), path, .. } if *path == partial));
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            source.contains("bytes free in") && source.contains(&format!("{} needed", u64::MAX)),
            "{source}"
        );
    }

    #[test]
    fn sha256_is_chosen_for_64_hex_digits() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let hash = ContentHash::for_etag(empty, Some(0));
        assert_eq!(hash.finish(), Some(("sha256", empty.to_owned())));
        assert!(ContentHash::for_etag("xyz", None).finish().is_none());
    }
}
