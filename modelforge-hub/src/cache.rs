//! The huggingface_hub cache layout, shared with Python tools.
//!
//! ```text
//! {cache}/models--org--name/
//!     blobs/{etag}                  the content, named by its sha256 (LFS) or git sha1
//!     blobs/{etag}.incomplete       a download in progress, resumed from its length
//!     snapshots/{commit}/{path}     a relative symlink to ../../blobs/{etag}
//!     refs/{revision}               the commit a branch or tag pointed at when last fetched
//! {cache}/.locks/models--org--name/{etag}.lock
//! ```
//!
//! Folder names go through the `hf-hub` crate's cache helpers, so the layout is the one the
//! Rust and Python Hub clients agree on. Links and refs are written under a name of their own
//! (`.{name}.{pid}-{n}.link` / `.ref`, skipped by listings) and renamed into place, so a pull
//! beside another, in a thread or a process, never reads one missing or half written.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo};
use modelforge_core::{CachedModel, HubError, ModelFormat, RepoFile, inspect};

use crate::quant::{canonical_dtype, parse_quantization};
use crate::selection::{GgufModel, SAFETENSORS_INDEX, gguf_models, safetensors_files};

/// A huggingface_hub cache directory.
#[derive(Clone, Debug)]
pub struct HfCache {
    cache: Cache,
}

/// A model found in the cache, with the files that make it up.
#[derive(Clone, Debug)]
pub(crate) struct CachedEntry {
    pub(crate) repo: String,
    pub(crate) model: CachedModel,
    /// Paths inside the repository.
    pub(crate) files: Vec<String>,
}

impl HfCache {
    /// The cache at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { cache: Cache::new(root.into()) }
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        self.cache.path()
    }

    /// `{cache}/models--org--name`.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root().join(Repo::model(repo.to_owned()).folder_name())
    }

    /// The commit `revision` of `repo` resolves to in the cache: the content of
    /// `refs/{revision}`, or the revision itself when it is a commit with a snapshot.
    pub fn commit(&self, repo: &str, revision: &str) -> Option<String> {
        if is_commit_hash(revision) && self.repo_dir(repo).join("snapshots").join(revision).is_dir() {
            return Some(revision.to_owned());
        }
        let commit = std::fs::read_to_string(self.ref_path(repo, revision)).ok()?.trim().to_owned();
        is_commit_hash(&commit).then_some(commit)
    }

    /// The cached copy of `file` of `repo` at `revision`, if there is one (a snapshot entry
    /// whose blob exists).
    pub fn get(&self, repo: &str, revision: &str, file: &str) -> Option<PathBuf> {
        // Like hf-hub's `CacheRepo::get`, but tolerant of a ref written with a newline and of
        // a commit given as the revision.
        let path = self.snapshot_path(repo, &self.commit(repo, revision)?, file);
        path.exists().then_some(path)
    }

    pub(crate) fn snapshot_path(&self, repo: &str, commit: &str, file: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit).join(file)
    }

    pub(crate) fn blob_path(&self, repo: &str, etag: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(etag)
    }

    pub(crate) fn lock_path(&self, repo: &str, etag: &str) -> PathBuf {
        let folder = Repo::model(repo.to_owned()).folder_name();
        self.root().join(".locks").join(folder).join(format!("{etag}.lock"))
    }

    /// Points `snapshots/{commit}/{file}` at the blob `etag` with a relative symlink, as
    /// huggingface_hub does (a copy where symlinks are unavailable).
    ///
    /// The link is made under a name of its own and renamed over the old one, so a pull running
    /// beside this one (another thread or process linking the same file) never finds the path
    /// missing: removing and re-creating it in place made a concurrent pull's `inspect` fail
    /// with "No such file or directory".
    pub(crate) fn link_snapshot(
        &self,
        repo: &str,
        commit: &str,
        file: &str,
        etag: &str,
    ) -> io::Result<PathBuf> {
        let link = self.snapshot_path(repo, commit, file);
        let parent = link.parent().expect("a snapshot path has a parent");
        std::fs::create_dir_all(parent)?;
        let depth = file.split('/').count() + 1; // file's directories, the commit, `snapshots`
        let target = PathBuf::from("../".repeat(depth)).join("blobs").join(etag);
        if std::fs::read_link(&link).is_ok_and(|existing| existing == target) {
            return Ok(link);
        }
        replace(&link, "link", |fresh| {
            #[cfg(unix)]
            return std::os::unix::fs::symlink(&target, fresh);
            #[cfg(not(unix))]
            return std::fs::copy(parent.join(&target), fresh).map(drop);
        })?;
        Ok(link)
    }

    /// Records that `revision` of `repo` is at `commit` (nothing to do for a commit).
    pub(crate) fn set_ref(&self, repo: &str, revision: &str, commit: &str) -> io::Result<()> {
        if revision == commit {
            return Ok(());
        }
        let path = self.ref_path(repo, revision);
        std::fs::create_dir_all(path.parent().expect("a ref path has a parent"))?;
        if std::fs::read_to_string(&path).is_ok_and(|written| written.trim() == commit) {
            return Ok(());
        }
        replace(&path, "ref", |fresh| std::fs::write(fresh, commit))
    }

    /// `refs/{revision}` of `repo`; a `revision` holding a `/` (a branch `feature/x`) puts it
    /// in a subfolder.
    fn ref_path(&self, repo: &str, revision: &str) -> PathBuf {
        self.repo_dir(repo).join("refs").join(revision)
    }

    /// The files of a snapshot, as a listing: path, size, sha256 (from the blob name) and
    /// quantization. Entries whose blob is missing are left out.
    pub fn snapshot_files(&self, repo: &str, commit: &str) -> Vec<RepoFile> {
        let dir = self.repo_dir(repo).join("snapshots").join(commit);
        let mut files = Vec::new();
        collect_files(&dir, "", &mut files);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    }

    /// Repositories in the cache, as `org/name`.
    pub fn repos(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.root()) else { return Vec::new() };
        let mut repos: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                e.file_name().to_str()?.strip_prefix("models--").map(|r| r.replacen("--", "/", 1))
            })
            .collect();
        repos.sort();
        repos
    }

    /// Every usable model in the cache: each GGUF model (a file or a complete split set) and
    /// each complete safetensors snapshot, named by a reference that finds it again
    /// (`org/repo:Q8_0`, `org/repo/file.gguf` when the quantization is ambiguous, `org/repo`
    /// for safetensors). Snapshots that a ref points at come first; an older snapshot only
    /// adds models under names not yet taken.
    pub fn models(&self) -> Vec<CachedModel> {
        self.entries().into_iter().map(|e| e.model).collect()
    }

    pub(crate) fn entries(&self) -> Vec<CachedEntry> {
        let mut entries = Vec::new();
        for repo in self.repos() {
            let mut names = BTreeSet::new();
            for commit in self.snapshots_by_preference(&repo) {
                for entry in self.snapshot_models(&repo, &commit) {
                    if names.insert(entry.model.name.clone()) {
                        entries.push(entry);
                    }
                }
            }
        }
        entries
    }

    /// The models of one snapshot.
    pub(crate) fn snapshot_models(&self, repo: &str, commit: &str) -> Vec<CachedEntry> {
        let files = self.snapshot_files(repo, commit);
        let dir = self.repo_dir(repo).join("snapshots").join(commit);
        let gguf = gguf_models(&files);
        let mut entries: Vec<CachedEntry> = gguf
            .iter()
            .map(|m| CachedEntry {
                repo: repo.to_owned(),
                model: CachedModel {
                    name: gguf_name(repo, m, &gguf),
                    path: dir.join(m.first_file()),
                    format: ModelFormat::Gguf,
                    quantization: m.quantization.clone(),
                    size_bytes: m.size(),
                },
                files: m.files.iter().map(|f| f.path.clone()).collect(),
            })
            .collect();
        if let Some(entry) = self.safetensors_entry(repo, &dir, &files) {
            entries.push(entry);
        }
        entries
    }

    fn safetensors_entry(&self, repo: &str, dir: &Path, files: &[RepoFile]) -> Option<CachedEntry> {
        let index = files
            .iter()
            .any(|f| f.path == SAFETENSORS_INDEX)
            .then(|| std::fs::read(dir.join(SAFETENSORS_INDEX)).ok())
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let needed = safetensors_files(files, index.as_ref());
        if needed.is_empty() {
            return None;
        }
        if let Some(names) = index.as_ref().and_then(|i| i.get("weight_map")).and_then(|m| m.as_object()) {
            // Every shard the index names must be here, or the model is half-downloaded.
            if !names.values().filter_map(|v| v.as_str()).all(|n| files.iter().any(|f| f.path == n)) {
                return None;
            }
        }
        let info = inspect(dir).ok()?;
        Some(CachedEntry {
            repo: repo.to_owned(),
            model: CachedModel {
                name: repo.to_owned(),
                path: dir.to_owned(),
                format: ModelFormat::Safetensors,
                quantization: info.quantization.map(canonical_dtype),
                size_bytes: needed.iter().map(|f| f.size).sum(),
            },
            files: needed.into_iter().map(|f| f.path).collect(),
        })
    }

    /// Snapshot commits of `repo`: those named by a ref first (`main` before others), then the
    /// rest by name.
    fn snapshots_by_preference(&self, repo: &str) -> Vec<String> {
        let dir = self.repo_dir(repo);
        let mut refs = BTreeMap::new();
        collect_refs(&dir.join("refs"), "", &mut refs);
        let mut order: Vec<String> = Vec::new();
        let main = refs.remove("main");
        for commit in main.into_iter().chain(refs.into_values()) {
            if !order.contains(&commit) {
                order.push(commit);
            }
        }
        let mut rest: Vec<String> = std::fs::read_dir(dir.join("snapshots"))
            .map(|entries| {
                entries.filter_map(Result::ok).filter_map(|e| e.file_name().into_string().ok()).collect()
            })
            .unwrap_or_default();
        rest.sort();
        order.retain(|c| rest.contains(c));
        rest.retain(|c| !order.contains(c));
        order.extend(rest);
        order
    }

    /// Deletes `files` of `repo` from every snapshot, and each blob no snapshot still links to.
    /// Returns the bytes freed.
    pub(crate) fn remove_files(&self, repo: &str, files: &[String]) -> Result<u64, HubError> {
        let dir = self.repo_dir(repo);
        let mut blobs = BTreeSet::new();
        for commit in self.snapshots_by_preference(repo) {
            for file in files {
                let link = self.snapshot_path(repo, &commit, file);
                if let Ok(target) = std::fs::read_link(&link) {
                    blobs.extend(target.file_name().map(|n| dir.join("blobs").join(n)));
                }
                match std::fs::remove_file(&link) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(io_error(&link, "removing", e));
                    }
                    _ => {}
                }
            }
        }
        let still_linked = self.linked_blobs(repo);
        let mut freed = 0;
        for blob in blobs.into_iter().filter(|b| !still_linked.contains(b)) {
            freed += blob.metadata().map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(&blob).or_else(not_found_ok).map_err(|e| io_error(&blob, "removing", e))?;
        }
        Ok(freed)
    }

    /// Deletes everything cached for `repo`. Returns the bytes freed.
    pub(crate) fn remove_repo(&self, repo: &str) -> Result<u64, HubError> {
        let dir = self.repo_dir(repo);
        let freed = dir_size(&dir.join("blobs"));
        std::fs::remove_dir_all(&dir).or_else(not_found_ok).map_err(|e| io_error(&dir, "removing", e))?;
        let locks = self.lock_path(repo, "x");
        if let Some(locks) = locks.parent() {
            let _ = std::fs::remove_dir_all(locks);
        }
        Ok(freed)
    }

    fn linked_blobs(&self, repo: &str) -> BTreeSet<PathBuf> {
        let dir = self.repo_dir(repo);
        let mut linked = BTreeSet::new();
        for commit in self.snapshots_by_preference(repo) {
            for file in self.snapshot_files(repo, &commit) {
                let link = self.snapshot_path(repo, &commit, &file.path);
                if let Ok(target) = std::fs::read_link(&link) {
                    linked.extend(target.file_name().map(|n| dir.join("blobs").join(n)));
                }
            }
        }
        linked
    }
}

/// `org/repo:QUANT` when that names this model alone, else `org/repo/first-file`.
pub(crate) fn gguf_name(repo: &str, model: &GgufModel, all: &[GgufModel]) -> String {
    match &model.quantization {
        Some(q) if all.iter().filter(|m| m.quantization.as_ref() == Some(q)).count() == 1 => {
            format!("{repo}:{q}")
        }
        _ => format!("{repo}/{}", model.first_file()),
    }
}

pub(crate) fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn io_error(path: &Path, doing: &str, source: io::Error) -> HubError {
    HubError::Io { context: format!("{doing} {}", path.display()), source }
}

fn not_found_ok(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}

fn collect_files(dir: &Path, prefix: &str, out: &mut Vec<RepoFile>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if is_being_written(&name) {
            continue;
        }
        let path = entry.path();
        let relative = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        // `metadata` follows the link: a dangling one (blob deleted) is not a file.
        let Ok(meta) = path.metadata() else { continue };
        if meta.is_dir() {
            collect_files(&path, &relative, out);
        } else {
            let blob =
                std::fs::read_link(&path).ok().and_then(|t| t.file_name()?.to_str().map(str::to_owned));
            out.push(RepoFile {
                quantization: parse_quantization(&name),
                sha256: blob.filter(|b| b.len() == 64 && b.bytes().all(|c| c.is_ascii_hexdigit())),
                size: meta.len(),
                path: relative,
            });
        }
    }
}

/// Makes `path` anew in one step: `make` writes a name beside it, unique to this process and
/// call (`.{name}.{pid}-{n}.{kind}`), which is then renamed over `path`, or removed if either
/// step fails.
fn replace(path: &Path, kind: &str, make: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let fresh = path.with_file_name(format!(".{name}.{}-{n}.{kind}", std::process::id()));
    make(&fresh).and_then(|()| std::fs::rename(&fresh, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&fresh);
    })
}

/// Whether a directory entry is a link or ref that [`replace`] is making.
fn is_being_written(name: &str) -> bool {
    name.starts_with('.') && (name.ends_with(".link") || name.ends_with(".ref"))
}

fn collect_refs(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if is_being_written(&name) {
            continue;
        }
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let path = entry.path();
        if path.is_dir() {
            collect_refs(&path, &relative, out);
        } else if let Ok(commit) = std::fs::read_to_string(&path) {
            out.insert(relative, commit.trim().to_owned());
        }
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}
