//! Saved conversation state on disk, guarded so that llama.cpp only ever reads files it wrote
//! for this very model.
//!
//! llama.cpp's own state file is written as is; beside it, `<file>.meta` records the model's
//! fingerprint, the KV cache type, the token count and the file's sha256. Loading checks them
//! before the file reaches llama.cpp, so a state from another model, another cache type or a
//! damaged file is refused with a clear error and the caller simply processes the prompt
//! again.

use std::io::Read;
use std::path::{Path, PathBuf};

use modelforge_core::BackendError;

use super::KvCacheType;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const FORMAT: u32 = 1;

/// What `<file>.meta` holds.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct StateMeta {
    pub format: u32,
    pub model: String,
    /// The KV cache type the state was saved with; files from before this field are F16.
    #[serde(default = "f16_name")]
    pub kv_cache: String,
    pub tokens: usize,
    pub sha256: String,
}

fn f16_name() -> String {
    format!("{:?}", KvCacheType::F16)
}

pub(crate) fn meta_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".meta");
    PathBuf::from(name)
}

fn state_error(path: &Path, reason: impl Into<String>) -> BackendError {
    BackendError::Inference {
        context: format!("state file {}: {}", path.display(), reason.into()),
        source: None,
    }
}

/// Identifies a model file cheaply: its size and the hash of its first MiB (the GGUF header
/// and metadata, which differ between models and quantizations).
pub(crate) fn model_fingerprint(path: &Path) -> Result<String, BackendError> {
    let io = |e: std::io::Error| state_error(path, format!("cannot read the model to fingerprint it: {e}"));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut head = Vec::with_capacity(1 << 20);
    file.by_ref().take(1 << 20).read_to_end(&mut head).map_err(io)?;
    Ok(format!("{size}:{}", hex(&Sha256::digest(&head))))
}

pub(crate) fn file_sha256(path: &Path) -> Result<String, BackendError> {
    let mut file = std::fs::File::open(path).map_err(|e| state_error(path, e.to_string()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| state_error(path, e.to_string()))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the sidecar after llama.cpp wrote `path`.
pub(crate) fn write_meta(
    path: &Path,
    model: &str,
    kv_cache: KvCacheType,
    tokens: usize,
) -> Result<(), BackendError> {
    let meta = StateMeta {
        format: FORMAT,
        model: model.to_owned(),
        kv_cache: format!("{kv_cache:?}"),
        tokens,
        sha256: file_sha256(path)?,
    };
    let json = serde_json::to_vec_pretty(&meta).expect("plain struct serializes");
    std::fs::write(meta_path(path), json)
        .map_err(|e| state_error(path, format!("cannot write the .meta file: {e}")))
}

/// Checks that `path` was saved for `model` with `kv_cache` and is intact.
pub(crate) fn verify(path: &Path, model: &str, kv_cache: KvCacheType) -> Result<StateMeta, BackendError> {
    let meta_file = meta_path(path);
    let bytes = std::fs::read(&meta_file)
        .map_err(|e| state_error(path, format!("cannot read {}: {e}", meta_file.display())))?;
    let meta: StateMeta =
        serde_json::from_slice(&bytes).map_err(|e| state_error(path, format!("damaged .meta file: {e}")))?;
    if meta.format != FORMAT {
        return Err(state_error(path, format!("unknown format {}", meta.format)));
    }
    if meta.model != model {
        return Err(state_error(path, "saved for another model"));
    }
    if meta.kv_cache != format!("{kv_cache:?}") {
        return Err(state_error(
            path,
            format!("saved with a {} KV cache; this model runs a {kv_cache:?} one", meta.kv_cache),
        ));
    }
    if file_sha256(path)? != meta.sha256 {
        return Err(state_error(path, "damaged (checksum mismatch)"));
    }
    Ok(meta)
}
