//! Finding and fetching models: the [`ModelHub`] trait.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::HubError;
use crate::model::ModelFormat;

/// A repository found by [`ModelHub::search`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSummary {
    /// `org/name`.
    pub id: String,
    /// Downloads, when the hub reports them.
    pub downloads: Option<u64>,
    /// Likes, when the hub reports them.
    pub likes: Option<u64>,
    /// Tags such as `gguf`.
    pub tags: Vec<String>,
}

/// One file of a repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoFile {
    /// Path inside the repository.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content, for LFS files.
    pub sha256: Option<String>,
    /// Quantization parsed from the file name, e.g. `Q4_K_M`.
    pub quantization: Option<String>,
}

/// A model available on local disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedModel {
    /// A name to refer to it by.
    pub name: String,
    /// The GGUF file or safetensors directory.
    pub path: PathBuf,
    /// Its format, detected from contents.
    pub format: ModelFormat,
    /// Quantization, when known.
    pub quantization: Option<String>,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// Download progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes on disk so far (including a resumed part).
    pub downloaded: u64,
    /// Total bytes, when known.
    pub total: Option<u64>,
}

/// Cancels a download from another thread. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the operation to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A source of models: a remote hub, a local catalogue, or both.
pub trait ModelHub: Send + Sync {
    /// Repositories matching `query`, at most `limit`.
    fn search(&self, query: &str, limit: usize) -> Result<Vec<RepoSummary>, HubError>;

    /// The files of a repository.
    fn list_files(&self, repo: &str) -> Result<Vec<RepoFile>, HubError>;

    /// Fetches one file (or returns it if already present), reporting progress, and returns
    /// its local path.
    fn download(
        &self,
        repo: &str,
        file: &str,
        on_progress: &mut dyn FnMut(Progress),
        cancel: &CancelToken,
    ) -> Result<PathBuf, HubError>;

    /// Models already on local disk.
    fn cached(&self) -> Result<Vec<CachedModel>, HubError>;

    /// Makes the model a user names by `reference` available locally, fetching every file it
    /// needs (all shards of a split GGUF, the config, tokenizer and weights of a safetensors
    /// model) unless they are already present, and returns it ready to load.
    ///
    /// Which references are understood is the implementation's to document; progress covers
    /// the whole model, not one file.
    fn pull(
        &self,
        reference: &str,
        on_progress: &mut dyn FnMut(Progress),
        cancel: &CancelToken,
    ) -> Result<CachedModel, HubError>;
}
