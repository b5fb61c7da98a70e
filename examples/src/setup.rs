//! Where the tools keep their data, and opening the store and models there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use modelforge_core::{Backend, LoadOptions, LoadedModel, SessionStore};
use modelforge_engine::LlamaCppBackend;
use modelforge_hub::LocalCatalog;
use modelforge_store::{SqliteStore, StoreOptions, load_or_create_secret};

/// The data directory: `--data-dir`/`MODELFORGE_DATA_DIR` if given, else the platform's data
/// directory (`~/.local/share/modelforge` on Linux).
pub fn data_dir(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match explicit {
        Some(dir) => Ok(dir),
        None => Ok(dirs::data_dir()
            .context("no data directory on this platform: pass --data-dir")?
            .join("modelforge")),
    }
}

/// Opens (creating if needed) the SQLite store in `data_dir`, with the JWT secret kept beside
/// it.
pub fn open_store(data_dir: &Path) -> anyhow::Result<Arc<dyn SessionStore>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let secret = load_or_create_secret(data_dir)?;
    let store = SqliteStore::open(&data_dir.join("modelforge.db"), StoreOptions::with_secret(secret))?;
    Ok(Arc::new(store))
}

/// The catalogue of models placed under `data_dir/models`.
pub fn catalog(data_dir: &Path) -> LocalCatalog {
    LocalCatalog::new(data_dir.join("models"))
}

/// Loads a model given as a path or a name from the catalogue.
pub fn load_model(
    data_dir: &Path,
    reference: &str,
    options: &LoadOptions,
) -> anyhow::Result<Arc<dyn LoadedModel>> {
    let model = catalog(data_dir).resolve(reference)?;
    let _span = tracing::info_span!("load", model = %model.path.display()).entered();
    Ok(LlamaCppBackend::new().load(&model.path, options)?)
}
