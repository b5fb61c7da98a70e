//! Where the tools keep their data, and opening the store and models there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use modelforge_core::{
    Backend, CachedModel, CancelToken, Embedder, LoadOptions, LoadedModel, MemoryExtractor, ModelFormat,
    ModelHub, ModelInfo, SessionStore,
};
use modelforge_engine::{BertEmbedder, CandleBackend, KvCacheType, LlamaCppBackend};
use modelforge_hub::{HfHub, LocalCatalog, ModelRef};
use modelforge_memory::{LlmExtractor, RuleExtractor};
use modelforge_store::{PgStore, SqliteStore, StoreOptions, load_or_create_secret};

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
/// it (or taken from `MODELFORGE_JWT_SECRET`).
pub fn open_store(data_dir: &Path) -> anyhow::Result<Arc<dyn SessionStore>> {
    open_store_at(data_dir, None)
}

/// The token signing key from the environment: `MODELFORGE_JWT_SECRET` (at least 32 bytes),
/// or the file `MODELFORGE_JWT_SECRET_FILE` names.
fn configured_secret() -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(secret) = std::env::var_os("MODELFORGE_JWT_SECRET") {
        return Ok(Some(secret.into_encoded_bytes()));
    }
    match std::env::var_os("MODELFORGE_JWT_SECRET_FILE") {
        Some(file) => {
            let bytes = std::fs::read(&file)
                .with_context(|| format!("reading MODELFORGE_JWT_SECRET_FILE {}", file.display()))?;
            Ok(Some(bytes.trim_ascii().to_vec()))
        }
        None => Ok(None),
    }
}

/// Opens the store: PostgreSQL when `database_url` is a `postgres://` URL (several servers
/// share it, so the signing key must come from `MODELFORGE_JWT_SECRET` or
/// `MODELFORGE_JWT_SECRET_FILE`: each replica must accept the others' tokens), else SQLite in
/// `data_dir`.
pub fn open_store_at(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Arc<dyn SessionStore>> {
    let configured = configured_secret()?;
    if let Some(url) = database_url.filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    {
        let secret = configured.context(
            "with PostgreSQL, set MODELFORGE_JWT_SECRET (32+ bytes) or MODELFORGE_JWT_SECRET_FILE: every \
             server sharing the database must sign tokens with the same key",
        )?;
        return Ok(Arc::new(PgStore::open(url, StoreOptions::with_secret(secret))?));
    }
    if let Some(other) = database_url {
        anyhow::bail!(
            "--database-url must be a postgres:// URL (SQLite lives in the data dir), not `{other}`"
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let secret = match configured {
        Some(secret) => secret,
        None => load_or_create_secret(data_dir)?,
    };
    let store = SqliteStore::open(&data_dir.join("modelforge.db"), StoreOptions::with_secret(secret))?;
    Ok(Arc::new(store))
}

/// The catalogue of models placed under `data_dir/models`.
pub fn catalog(data_dir: &Path) -> LocalCatalog {
    LocalCatalog::new(data_dir.join("models"))
}

/// The Hugging Face Hub client, configured from `HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_CACHE` /
/// `HF_HOME` and `HF_HUB_OFFLINE`.
pub fn hub() -> HfHub {
    HfHub::from_env()
}

/// Finds the model `reference` names: a path or a name under `data_dir/models`, else a Hugging
/// Face reference (`org/repo[:QUANT]`, `org/repo/file.gguf`), taken from the cache or pulled
/// into it first (unless offline), with a line on stderr when a download starts.
pub fn resolve_model(data_dir: &Path, reference: &str) -> anyhow::Result<CachedModel> {
    let catalog = catalog(data_dir);
    let from_hub = matches!(ModelRef::parse(reference), Ok(ModelRef::Hub { .. }))
        && !catalog.cached()?.iter().any(|m| m.name == reference);
    if !from_hub {
        return Ok(catalog.resolve(reference)?);
    }
    let mut announced = false;
    let mut on_progress = |p: modelforge_core::Progress| {
        if !announced && p.total.is_some_and(|total| p.downloaded < total) {
            let size = p.total.unwrap_or_default() as f64 / 1e6;
            eprintln!("downloading {reference} ({size:.1} MB) into the Hugging Face cache...");
            announced = true;
        }
    };
    Ok(hub().pull(reference, &mut on_progress, &CancelToken::new())?)
}

/// The `--kv-cache` option: how llama.cpp stores keys and values.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum KvCacheArg {
    /// q8_0 where the model's attention heads allow it, else f16: faster than f16 on CPUs
    /// once conversations grow, at half the memory.
    #[default]
    Auto,
    /// 16-bit floats (llama.cpp's default).
    F16,
    /// 32-bit floats, without flash attention: twice the memory.
    F32,
    /// 8-bit blocks, with flash attention: about half the memory of f16.
    #[value(name = "q8_0")]
    Q8_0,
}

impl From<KvCacheArg> for KvCacheType {
    fn from(arg: KvCacheArg) -> Self {
        match arg {
            KvCacheArg::Auto => KvCacheType::Auto,
            KvCacheArg::F16 => KvCacheType::F16,
            KvCacheArg::F32 => KvCacheType::F32,
            KvCacheArg::Q8_0 => KvCacheType::Q8_0,
        }
    }
}

/// The `--backend` option: which runtime serves a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// llama.cpp: GGUF files of every architecture it knows.
    #[value(name = "llama-cpp")]
    LlamaCpp,
    /// candle: llama-family safetensors directories and llama GGUF files.
    Candle,
}

impl BackendArg {
    /// `llama-cpp` or `candle`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendArg::LlamaCpp => "llama-cpp",
            BackendArg::Candle => "candle",
        }
    }
}

/// How the tools load a model: the backend (`None`: chosen by the model's format) and the KV
/// cache type of llama.cpp.
#[derive(Clone, Copy, Debug, Default)]
pub struct Loader {
    /// `--backend`, if given.
    pub backend: Option<BackendArg>,
    /// `--kv-cache`.
    pub kv_cache: KvCacheArg,
}

impl From<KvCacheArg> for Loader {
    fn from(kv_cache: KvCacheArg) -> Self {
        Loader { backend: None, kv_cache }
    }
}

/// Architectures candle runs: GGUF files of these `general.architecture`s, safetensors
/// directories of these `model_type`s.
const CANDLE_GGUF_ARCHITECTURES: &[&str] = &["llama"];
const CANDLE_SAFETENSORS_ARCHITECTURES: &[&str] = &["llama", "mistral"];

/// The backend that serves the model `info`: `explicit` if it can, else by format (a GGUF →
/// llama.cpp, a safetensors directory → candle). A model no backend can serve is a one-line
/// error naming its architecture and what is supported.
pub fn backend_for(info: &ModelInfo, explicit: Option<BackendArg>) -> anyhow::Result<BackendArg> {
    let arch = info.architecture.as_deref().unwrap_or("unknown");
    let candle_can = match info.format {
        ModelFormat::Gguf => CANDLE_GGUF_ARCHITECTURES.contains(&arch),
        ModelFormat::Safetensors => CANDLE_SAFETENSORS_ARCHITECTURES.contains(&arch),
    };
    match (info.format, explicit) {
        (ModelFormat::Gguf, None | Some(BackendArg::LlamaCpp)) => Ok(BackendArg::LlamaCpp),
        (_, Some(BackendArg::Candle) | None) if candle_can => Ok(BackendArg::Candle),
        (ModelFormat::Gguf, Some(BackendArg::Candle)) => anyhow::bail!(
            "{}: the candle backend runs GGUF models of the {} architecture; this one is `{arch}` (use \
             --backend llama-cpp)",
            info.path.display(),
            CANDLE_GGUF_ARCHITECTURES.join(", ")
        ),
        (ModelFormat::Safetensors, Some(BackendArg::LlamaCpp)) => anyhow::bail!(
            "{}: llama.cpp needs a GGUF file and this is a safetensors model (use --backend candle, or a \
             GGUF of it)",
            info.path.display()
        ),
        (ModelFormat::Safetensors, _) => anyhow::bail!(
            "{}: unsupported architecture `{arch}`: safetensors models run on candle, which supports {}; \
             use a GGUF of it (llama.cpp)",
            info.path.display(),
            CANDLE_SAFETENSORS_ARCHITECTURES.join(", ")
        ),
    }
}

/// Loads a model given as a path, a name from the catalogue, or a Hugging Face reference (see
/// [`resolve_model`]), with the backend [`backend_for`] picks (llama.cpp with a KV cache of
/// type `loader.kv_cache` for a GGUF, candle for a safetensors directory).
pub fn load_model(
    data_dir: &Path,
    reference: &str,
    options: &LoadOptions,
    loader: Loader,
) -> anyhow::Result<Arc<dyn LoadedModel>> {
    let model = resolve_model(data_dir, reference)?;
    let _span = tracing::info_span!("load", model = %model.path.display()).entered();
    let info = modelforge_core::inspect(&model.path)?;
    let backend = backend_for(&info, loader.backend)?;
    tracing::info!(backend = backend.as_str(), format = info.format.as_str(), "loading");
    Ok(match backend {
        BackendArg::LlamaCpp => {
            LlamaCppBackend::new().with_kv_cache_type(loader.kv_cache.into()).load(&model.path, options)?
        }
        BackendArg::Candle => CandleBackend::new().load(&model.path, options)?,
    })
}

/// What model lists show about a model besides its file: the backend that serves it and the
/// chat format it is prompted with (or why it cannot be served).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelDescription {
    /// `llama-cpp` or `candle`; `None` when no backend can serve the model.
    pub backend: Option<&'static str>,
    /// E.g. `model's template`, `gemma (detected)`, `plain (fallback)`.
    pub chat_format: Option<String>,
    /// Why the model cannot be served, or its chat format not told.
    pub error: Option<String>,
}

/// Describes the model at `path` without loading it (reads its header or config files).
pub fn describe_model(
    path: &Path,
    chat_template: Option<&str>,
    backend: Option<BackendArg>,
) -> ModelDescription {
    let info = match modelforge_core::inspect(path) {
        Ok(info) => info,
        Err(err) => {
            return ModelDescription { backend: None, chat_format: None, error: Some(err.to_string()) };
        }
    };
    let (backend, mut error) = match backend_for(&info, backend) {
        Ok(b) => (Some(b.as_str()), None),
        Err(err) => (None, Some(format!("{err:#}"))),
    };
    let chat_format = match modelforge_engine::turn_format::describe(&info, chat_template) {
        Ok(format) => Some(format.to_string()),
        Err(err) => {
            error.get_or_insert_with(|| err.to_string());
            None
        }
    };
    ModelDescription { backend, chat_format, error }
}

/// The memory extractors of a chat: the rules (with statements kept in the user's own words if
/// `own_words`), and `model` itself if `llm_memory`.
pub fn memory_extractors(
    model: &Arc<dyn LoadedModel>,
    own_words: bool,
    llm_memory: bool,
) -> Vec<Arc<dyn MemoryExtractor>> {
    let mut extractors: Vec<Arc<dyn MemoryExtractor>> =
        vec![Arc::new(RuleExtractor::new().with_own_words(own_words))];
    if llm_memory {
        extractors.push(Arc::new(LlmExtractor::new(Arc::clone(model))));
    }
    extractors
}

/// The Hugging Face repository of the default embedder.
pub const DEFAULT_EMBEDDER_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The sentence embedder used for memory search: `explicit` (a directory with `config.json`,
/// `tokenizer.json` and `model.safetensors`, or `none`), else `MODELFORGE_EMBEDDER`, else
/// `data_dir/models/all-MiniLM-L6-v2` if it is there, else all-MiniLM-L6-v2 from the Hugging
/// Face cache if it was pulled (`modelforge pull sentence-transformers/all-MiniLM-L6-v2`).
/// Nothing is downloaded here. Without an embedder, memories are found by keywords only.
pub fn open_embedder(data_dir: &Path, explicit: Option<&str>) -> anyhow::Result<Option<Arc<dyn Embedder>>> {
    let chosen = explicit.map(str::to_owned).or_else(|| std::env::var("MODELFORGE_EMBEDDER").ok());
    let dir = match chosen.as_deref() {
        Some("none") => return Ok(None),
        Some(dir) => PathBuf::from(dir),
        None => {
            let local = data_dir.join("models").join("all-MiniLM-L6-v2");
            let pulled = || {
                let cached = hub().cached().ok()?;
                cached.into_iter().find(|m| m.name == DEFAULT_EMBEDDER_REPO).map(|m| m.path)
            };
            match Some(local).filter(|dir| dir.join("config.json").exists()).or_else(pulled) {
                Some(dir) => dir,
                None => {
                    tracing::debug!("no embedder: memories are searched by keywords only");
                    return Ok(None);
                }
            }
        }
    };
    let embedder =
        BertEmbedder::load(&dir).with_context(|| format!("loading the embedder {}", dir.display()))?;
    Ok(Some(Arc::new(embedder)))
}

/// Whether a backend can chat with `model`: every GGUF file (llama.cpp knows many
/// architectures, and says which it does not), and the safetensors directories candle runs
/// (not, say, an embedder's).
pub fn servable(model: &CachedModel) -> bool {
    model.format == ModelFormat::Gguf
        || modelforge_core::inspect(&model.path).is_ok_and(|info| backend_for(&info, None).is_ok())
}

/// The GGUF models and llama-family safetensors directories on this machine: DATA_DIR/models, the Hugging Face cache, and the test
/// models `scripts/test-models` fetched (`MODELFORGE_TEST_MODELS`, else
/// `~/.cache/modelforge/test-models`), in that order.
pub fn local_models(data_dir: &Path) -> Vec<CachedModel> {
    let mut models = catalog(data_dir).cached().unwrap_or_default();
    models.extend(hub().cached().unwrap_or_default());
    let test_models = std::env::var_os("MODELFORGE_TEST_MODELS")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|home| home.join(".cache/modelforge/test-models")));
    if let Some(dir) = test_models {
        let subdirs = std::fs::read_dir(&dir).into_iter().flatten().flatten();
        for sub in subdirs.filter(|e| e.path().is_dir()) {
            models.extend(LocalCatalog::new(sub.path()).cached().unwrap_or_default());
        }
    }
    models.retain(servable);
    let mut seen = std::collections::HashSet::new();
    models.retain(|m| seen.insert(m.path.clone()));
    models
}

/// What kind of search service `--search-url` is.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SearchProviderArg {
    /// A SearXNG instance's JSON API (`/search?q=...&format=json`).
    #[default]
    Searxng,
    /// Any search API that answers a GET with JSON, described by the `--search-json-*` paths.
    Json,
}

/// Web search settings shared by the CLI and the server.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct WebArgs {
    /// The search service: a SearXNG instance (`json` must be in its `search.formats`), or with
    /// `--search-provider json` an address with `{query}` (and optionally `{count}`) in it,
    /// e.g. `https://search.example/api?q={query}&n={count}`.
    #[arg(long, env = "MODELFORGE_SEARCH_URL")]
    pub search_url: Option<String>,
    /// What kind of service `--search-url` is.
    #[arg(long, value_enum, env = "MODELFORGE_SEARCH_PROVIDER", default_value = "searxng")]
    pub search_provider: SearchProviderArg,
    /// With `--search-provider json`: the dotted path to the list of results in the answer,
    /// e.g. `data.items` (numbers index arrays; empty: the answer is the list) [default: results].
    #[arg(long, env = "MODELFORGE_SEARCH_JSON_RESULTS", value_name = "PATH")]
    pub search_json_results: Option<String>,
    /// With `--search-provider json`: the path to a page's address in one result [default: url].
    #[arg(long, env = "MODELFORGE_SEARCH_JSON_URL", value_name = "PATH")]
    pub search_json_url: Option<String>,
    /// With `--search-provider json`: the path to a page's title in one result [default: title].
    #[arg(long, env = "MODELFORGE_SEARCH_JSON_TITLE", value_name = "PATH")]
    pub search_json_title: Option<String>,
    /// With `--search-provider json`: the path to the excerpt in one result [default: snippet].
    #[arg(long, env = "MODELFORGE_SEARCH_JSON_SNIPPET", value_name = "PATH")]
    pub search_json_snippet: Option<String>,
    /// With `--search-provider json`: the path to the publication date (`YYYY-MM-DD...`) in one
    /// result [default: none].
    #[arg(long, env = "MODELFORGE_SEARCH_JSON_DATE", value_name = "PATH")]
    pub search_json_date: Option<String>,
    /// Let web search fetch pages on loopback, private and link-local addresses (a local
    /// deployment; never on a server that strangers can use).
    #[arg(long, env = "MODELFORGE_WEB_ALLOW_PRIVATE", value_parser = clap::builder::FalseyValueParser::new())]
    pub web_allow_private: bool,
    /// Seconds a web search may take in all, from the first query to the last page.
    #[arg(long, default_value_t = 8)]
    pub web_deadline: u64,
}

impl WebArgs {
    /// The JSON provider's field paths: the `--search-json-*` given, defaults for the rest.
    fn json_fields(&self) -> modelforge_memory::JsonFields {
        let mut fields = modelforge_memory::JsonFields::default();
        let paths = [
            (&self.search_json_results, &mut fields.results),
            (&self.search_json_url, &mut fields.url),
            (&self.search_json_title, &mut fields.title),
            (&self.search_json_snippet, &mut fields.snippet),
        ];
        for (given, field) in paths {
            if let Some(path) = given {
                field.clone_from(path);
            }
        }
        fields.published = self.search_json_date.clone().filter(|p| !p.is_empty());
        fields
    }

    fn json_paths_given(&self) -> bool {
        [
            &self.search_json_results,
            &self.search_json_url,
            &self.search_json_title,
            &self.search_json_snippet,
            &self.search_json_date,
        ]
        .iter()
        .any(|p| p.is_some())
    }
}

/// The web search for `args`, or `None` when no search service is configured. Passages are
/// ranked by keywords and, when `embedder` is given (the one memory search uses), by meaning:
/// the best 6 by keywords, each cut to its first 96 tokens (see `web-bench`).
pub fn open_web(
    args: &WebArgs,
    embedder: Option<Arc<dyn Embedder>>,
) -> anyhow::Result<Option<Arc<modelforge_memory::WebSearch>>> {
    let Some(url) = args.search_url.as_deref().filter(|u| !u.trim().is_empty()) else { return Ok(None) };
    let provider: Arc<dyn modelforge_core::SearchProvider> = match args.search_provider {
        SearchProviderArg::Searxng => {
            anyhow::ensure!(
                !args.json_paths_given(),
                "--search-json-* (MODELFORGE_SEARCH_JSON_*) describe a JSON search API: add \
                 --search-provider json"
            );
            Arc::new(modelforge_memory::SearxngProvider::new(url)?)
        }
        SearchProviderArg::Json => Arc::new(modelforge_memory::JsonProvider::new(url, args.json_fields())?),
    };
    let options = modelforge_memory::WebOptions::default()
        .with_allow_private(args.web_allow_private)
        .with_deadline(std::time::Duration::from_secs(args.web_deadline.max(1)));
    Ok(Some(Arc::new(modelforge_memory::WebSearch::new(provider, embedder, options))))
}
