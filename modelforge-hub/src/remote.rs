//! [`HfHub`]: the Hugging Face Hub behind the [`ModelHub`] trait.

use std::path::{Path, PathBuf};

use modelforge_core::{
    CachedModel, CancelToken, HubError, ModelFormat, ModelHub, Progress, RepoFile, RepoSummary,
    detect_format, inspect,
};

use crate::api::{Api, SearchOptions};
use crate::cache::{CachedEntry, HfCache, gguf_name, io_error};
use crate::download::{FileRequest, fetch_file};
use crate::options::{HfHubOptions, OFFLINE_ENV};
use crate::quant::{canonical_dtype, parse_quantization};
use crate::reference::{ModelRef, Selector};
use crate::selection::{
    GgufModel, SAFETENSORS_INDEX, choose_default, gguf_models, is_gguf, safetensors_files,
};

/// The Hugging Face Hub (or any server that speaks its API, through `HF_ENDPOINT`), with the
/// huggingface_hub cache on local disk.
///
/// - What is in the cache is used without a request: a file by its path, a model by its
///   reference (`org/repo` takes a model already pulled from that repository, preferring the
///   default quantization). Remove a model with [`remove`](Self::remove) to fetch it afresh.
/// - In offline mode (`HF_HUB_OFFLINE`) only the cache is used, and anything not there is a
///   [`HubError::Offline`] that names the cache directory.
/// - A model's files are fetched at one commit: the first file pins the commit the revision
///   points at, and the others are fetched at that commit, so a push to the repository during
///   a pull cannot mix two versions.
pub struct HfHub {
    options: HfHubOptions,
    api: Api,
    cache: HfCache,
}

/// What [`HfHub::plan`] would fetch for a reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPlan {
    /// The repository.
    pub repo: String,
    /// The canonical reference of the chosen model (`org/repo:Q4_K_M`, `org/repo`, ...).
    pub name: String,
    /// The format.
    pub format: ModelFormat,
    /// The quantization, when known.
    pub quantization: Option<String>,
    /// The files to fetch; the one a backend opens first (a GGUF file, the first shard, or for
    /// safetensors `config.json`).
    pub files: Vec<RepoFile>,
}

impl ModelPlan {
    /// Total size in bytes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// What [`HfHub::remove`] deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    /// What was removed, e.g. `org/repo:Q8_0`.
    pub name: String,
    /// Bytes freed on disk.
    pub bytes_freed: u64,
}

impl HfHub {
    /// A client with these settings.
    pub fn new(options: HfHubOptions) -> Self {
        Self { api: Api::new(&options), cache: HfCache::new(&options.cache_dir), options }
    }

    /// A client configured from the environment (see [`HfHubOptions::from_env`]).
    pub fn from_env() -> Self {
        Self::new(HfHubOptions::from_env())
    }

    /// The settings.
    pub fn options(&self) -> &HfHubOptions {
        &self.options
    }

    /// The cache.
    pub fn cache(&self) -> &HfCache {
        &self.cache
    }

    /// Searches repositories.
    pub fn search_with(&self, search: &SearchOptions) -> Result<Vec<RepoSummary>, HubError> {
        self.online(|| format!("searching for `{}`", search.query))?;
        self.api.search(search)
    }

    /// The files of `repo` at `revision`. Offline, the files of the cached snapshot.
    pub fn list_files_at(&self, repo: &str, revision: &str) -> Result<Vec<RepoFile>, HubError> {
        if self.options.offline {
            return match self.cache.commit(repo, revision) {
                Some(commit) => Ok(self.cache.snapshot_files(repo, &commit)),
                None => Err(self.offline_error(format!("repository {repo}"))),
            };
        }
        self.api.tree(repo, revision)
    }

    /// Fetches `file` of `repo` at `revision` into the cache, or finds it there, and returns
    /// its path in the snapshot.
    pub fn download_at(
        &self,
        repo: &str,
        revision: &str,
        file: &str,
        on_progress: &mut dyn FnMut(Progress),
        cancel: &CancelToken,
    ) -> Result<PathBuf, HubError> {
        if let Some(path) = self.cache.get(repo, revision, file) {
            report_complete(&path, on_progress);
            return Ok(path);
        }
        self.online(|| format!("{file} of {repo}"))?;
        let request = FileRequest { repo, revision, file };
        Ok(fetch_file(&self.api, &self.cache, &request, on_progress, cancel)?.0)
    }

    /// What pulling `reference` would fetch, looked up on the Hub (this fetches a sharded
    /// safetensors model's small weight index, to know its shards).
    pub fn plan(&self, reference: &str) -> Result<ModelPlan, HubError> {
        let (repo, selector) = hub_reference(reference)?;
        self.online(|| format!("model {reference}"))?;
        let files = self.api.tree(&repo, &self.options.revision)?;
        self.plan_from(&repo, &selector, &files)
    }

    /// Deletes a model from the cache: `org/repo` removes everything cached for the
    /// repository, `org/repo:QUANT` and `org/repo/file` only those files (blobs still linked
    /// from another snapshot stay).
    pub fn remove(&self, reference: &str) -> Result<Removed, HubError> {
        let (repo, selector) = hub_reference(reference)?;
        if !self.cache.repo_dir(&repo).exists() {
            return Err(self.not_cached(&repo, reference));
        }
        let name = ModelRef::Hub { repo: repo.clone(), selector: selector.clone() }.to_string();
        if selector == Selector::Default {
            return Ok(Removed { name, bytes_freed: self.cache.remove_repo(&repo)? });
        }
        let matching: Vec<CachedEntry> = self
            .cache
            .entries()
            .into_iter()
            .filter(|e| e.repo == repo)
            .filter(|e| match &selector {
                Selector::Quantization(q) => e.model.quantization.as_ref() == Some(q),
                Selector::File(f) => e.files.contains(f),
                Selector::Default => true,
            })
            .collect();
        let mut files: Vec<String> = matching.into_iter().flat_map(|e| e.files).collect();
        if let Selector::File(file) = &selector
            && files.is_empty()
            && self.cache.get(&repo, &self.options.revision, file).is_some()
        {
            files.push(file.clone());
        }
        if files.is_empty() {
            return Err(self.not_cached(&repo, reference));
        }
        let bytes_freed = self.cache.remove_files(&repo, &files)?;
        Ok(Removed { name, bytes_freed })
    }

    fn not_cached(&self, repo: &str, reference: &str) -> HubError {
        let names: Vec<String> =
            self.cache.models().into_iter().map(|m| m.name).filter(|n| n.starts_with(repo)).collect();
        let held = if names.is_empty() {
            "nothing from it is cached".to_owned()
        } else {
            format!("cached: {}", names.join(", "))
        };
        HubError::NotFound {
            what: "cached model",
            name: format!("{reference} in {} ({held})", self.cache.root().display()),
        }
    }

    fn plan_from(&self, repo: &str, selector: &Selector, files: &[RepoFile]) -> Result<ModelPlan, HubError> {
        let models = gguf_models(files);
        let gguf_plan = |model: &GgufModel| ModelPlan {
            repo: repo.to_owned(),
            name: gguf_name(repo, model, &models),
            format: ModelFormat::Gguf,
            quantization: model.quantization.clone(),
            files: model.files.clone(),
        };
        match selector {
            Selector::Default => match choose_default(&models) {
                Some(model) => Ok(gguf_plan(model)),
                None => self.safetensors_plan(repo, files),
            },
            Selector::Quantization(q) => {
                let same: Vec<GgufModel> =
                    models.iter().filter(|m| m.quantization.as_ref() == Some(q)).cloned().collect();
                match choose_default(&same) {
                    Some(model) => Ok(gguf_plan(model)),
                    None if models.is_empty() => Err(no_gguf(repo, files)),
                    None => Err(HubError::NotFound {
                        what: "quantization",
                        name: format!("{q} in {repo} (available: {})", quantizations(&models)),
                    }),
                }
            }
            Selector::File(path) => {
                if let Some(model) = models.iter().find(|m| m.files.iter().any(|f| &f.path == path)) {
                    return Ok(gguf_plan(model));
                }
                let file = files.iter().find(|f| &f.path == path).ok_or_else(|| HubError::NotFound {
                    what: "file",
                    name: format!("{path} in {repo} at revision {}", self.options.revision),
                })?;
                let format = if is_gguf(path) { ModelFormat::Gguf } else { ModelFormat::Safetensors };
                Ok(ModelPlan {
                    repo: repo.to_owned(),
                    name: format!("{repo}/{path}"),
                    format,
                    quantization: file.quantization.clone(),
                    files: vec![file.clone()],
                })
            }
        }
    }

    fn safetensors_plan(&self, repo: &str, files: &[RepoFile]) -> Result<ModelPlan, HubError> {
        let index = if files.iter().any(|f| f.path == SAFETENSORS_INDEX) {
            let path = self.download_at(
                repo,
                &self.options.revision,
                SAFETENSORS_INDEX,
                &mut |_| {},
                &CancelToken::new(),
            )?;
            let bytes = std::fs::read(&path).map_err(|e| io_error(&path, "reading", e))?;
            Some(serde_json::from_slice(&bytes).map_err(|e| HubError::Remote {
                context: format!("{SAFETENSORS_INDEX} of {repo} is not valid JSON"),
                source: Some(Box::new(e)),
            })?)
        } else {
            None
        };
        let mut needed = safetensors_files(files, index.as_ref());
        if needed.is_empty() {
            return Err(no_gguf(repo, files));
        }
        // `config.json` first: it is what a backend opens to find the rest.
        needed.sort_by_key(|f| f.path != "config.json");
        Ok(ModelPlan {
            repo: repo.to_owned(),
            name: repo.to_owned(),
            format: ModelFormat::Safetensors,
            quantization: None,
            files: needed,
        })
    }

    /// The cached model `selector` means in the snapshot `revision` points at, if complete.
    fn cached_model(&self, repo: &str, selector: &Selector) -> Option<CachedModel> {
        let commit = self.cache.commit(repo, &self.options.revision)?;
        let entries = self.cache.snapshot_models(repo, &commit);
        let gguf: Vec<&CachedEntry> =
            entries.iter().filter(|e| e.model.format == ModelFormat::Gguf).collect();
        let as_gguf = |e: &&CachedEntry| GgufModel {
            quantization: e.model.quantization.clone(),
            files: e
                .files
                .iter()
                .map(|f| RepoFile { path: f.clone(), size: 0, sha256: None, quantization: None })
                .collect(),
        };
        let pick = |candidates: Vec<&CachedEntry>| {
            let models: Vec<GgufModel> = candidates.iter().map(as_gguf).collect();
            let chosen = choose_default(&models)?;
            candidates.into_iter().find(|e| e.files[0] == chosen.first_file()).map(|e| e.model.clone())
        };
        match selector {
            Selector::Default => pick(gguf).or_else(|| {
                entries.iter().find(|e| e.model.format == ModelFormat::Safetensors).map(|e| e.model.clone())
            }),
            Selector::Quantization(q) => {
                pick(gguf.into_iter().filter(|e| e.model.quantization.as_ref() == Some(q)).collect())
            }
            Selector::File(file) => match gguf.into_iter().find(|e| e.files.contains(file)) {
                Some(entry) => Some(entry.model.clone()),
                None => {
                    let path = self.cache.get(repo, &commit, file)?;
                    single_file_model(repo, file, &path).ok()
                }
            },
        }
    }

    /// Fetches every file of `plan`, reporting progress over the whole model.
    fn fetch_plan(
        &self,
        plan: &ModelPlan,
        on_progress: &mut dyn FnMut(Progress),
        cancel: &CancelToken,
    ) -> Result<CachedModel, HubError> {
        let total = plan.size();
        let mut done = 0;
        let mut commit: Option<String> = None;
        let mut first_path = None;
        for file in &plan.files {
            let revision = commit.clone().unwrap_or_else(|| self.options.revision.clone());
            let request = FileRequest { repo: &plan.repo, revision: &revision, file: &file.path };
            let mut report =
                |p: Progress| on_progress(Progress { downloaded: done + p.downloaded, total: Some(total) });
            let (path, at) = match self.cache.get(&plan.repo, &revision, &file.path) {
                Some(path) => {
                    (path, self.cache.commit(&plan.repo, &revision).unwrap_or_else(|| revision.clone()))
                }
                None => fetch_file(&self.api, &self.cache, &request, &mut report, cancel)?,
            };
            commit.get_or_insert(at);
            done += file.size;
            on_progress(Progress { downloaded: done, total: Some(total) });
            first_path.get_or_insert(path);
        }
        let first =
            first_path.ok_or_else(|| HubError::NotFound { what: "model file", name: plan.name.clone() })?;
        let path = match plan.format {
            ModelFormat::Safetensors if plan.files.len() > 1 => {
                first.parent().map(Path::to_owned).unwrap_or(first)
            }
            _ => first,
        };
        let quantization = match plan.format {
            ModelFormat::Safetensors => inspect(&path).ok().and_then(|i| i.quantization).map(canonical_dtype),
            ModelFormat::Gguf => plan.quantization.clone(),
        };
        detect_format(&path)?;
        Ok(CachedModel {
            name: plan.name.clone(),
            path,
            format: plan.format,
            quantization,
            size_bytes: total,
        })
    }

    fn online(&self, what: impl FnOnce() -> String) -> Result<(), HubError> {
        if self.options.offline { Err(self.offline_error(what())) } else { Ok(()) }
    }

    fn offline_error(&self, what: String) -> HubError {
        HubError::Offline { what, cache: self.cache.root().to_owned(), env: OFFLINE_ENV }
    }
}

impl ModelHub for HfHub {
    /// Repositories whose id contains `query`, most downloaded first.
    fn search(&self, query: &str, limit: usize) -> Result<Vec<RepoSummary>, HubError> {
        self.search_with(&SearchOptions { query: query.to_owned(), limit, ..SearchOptions::default() })
    }

    /// The files of `repo` at the configured revision.
    fn list_files(&self, repo: &str) -> Result<Vec<RepoFile>, HubError> {
        let (repo, _) = hub_reference(repo)?;
        self.list_files_at(&repo, &self.options.revision)
    }

    /// One file at the configured revision; an empty `file` means the repository's default
    /// model, as [`pull`](ModelHub::pull) of `repo` gives it.
    fn download(
        &self,
        repo: &str,
        file: &str,
        on_progress: &mut dyn FnMut(Progress),
        cancel: &CancelToken,
    ) -> Result<PathBuf, HubError> {
        if file.is_empty() {
            return Ok(self.pull(repo, on_progress, cancel)?.path);
        }
        let (repo, _) = hub_reference(repo)?;
        self.download_at(&repo, &self.options.revision, file, on_progress, cancel)
    }

    /// The models in the cache.
    fn cached(&self) -> Result<Vec<CachedModel>, HubError> {
        Ok(self.cache.models())
    }

    /// Takes any reference of the [`ModelRef`] grammar: a local path is inspected and returned
    /// as it is; a hub reference is served from the cache when complete there, else fetched.
    fn pull(
        &self,
        reference: &str,
        on_progress: &mut dyn FnMut(Progress),
        cancel: &CancelToken,
    ) -> Result<CachedModel, HubError> {
        let (repo, selector) = match ModelRef::parse(reference)? {
            ModelRef::Local(path) => return local_model(reference, &path),
            ModelRef::Hub { repo, selector } => (repo, selector),
        };
        let _span = tracing::info_span!("pull", reference).entered();
        let mut report_cached = |model: CachedModel| {
            tracing::debug!(path = %model.path.display(), "already in the cache");
            on_progress(Progress { downloaded: model.size_bytes, total: Some(model.size_bytes) });
            Ok(model)
        };
        // A quantization or a file names one model, so a complete copy in the cache is it. A
        // bare repository is decided by the listing, unless the Hub cannot be asked.
        let cached = self.cached_model(&repo, &selector);
        match cached {
            Some(model) if selector != Selector::Default || self.options.offline => {
                return report_cached(model);
            }
            None => self.online(|| format!("model {reference}"))?,
            Some(_) => {}
        }
        let files = match (self.api.tree(&repo, &self.options.revision), cached) {
            (Ok(files), _) => files,
            (Err(err @ HubError::Network { .. }), Some(model)) => {
                tracing::warn!("using {} from the cache: cannot reach the Hub ({err})", model.name);
                return report_cached(model);
            }
            (Err(err), _) => return Err(err),
        };
        let plan = self.plan_from(&repo, &selector, &files)?;
        self.fetch_plan(&plan, on_progress, cancel)
    }
}

/// A hub reference's repository and selector; a local path is an error here.
fn hub_reference(reference: &str) -> Result<(String, Selector), HubError> {
    match ModelRef::parse(reference)? {
        ModelRef::Hub { repo, selector } => Ok((repo, selector)),
        ModelRef::Local(_) => Err(HubError::InvalidReference {
            reference: reference.to_owned(),
            reason: "this is a local path, not a Hub repository (`org/repo`)".to_owned(),
        }),
    }
}

fn local_model(reference: &str, path: &Path) -> Result<CachedModel, HubError> {
    let info = inspect(path)?;
    Ok(CachedModel {
        name: reference.to_owned(),
        path: path.to_owned(),
        format: info.format,
        quantization: info
            .quantization
            .map(canonical_dtype)
            .or_else(|| path.file_name().and_then(|n| n.to_str()).and_then(parse_quantization)),
        size_bytes: info.size_bytes,
    })
}

fn single_file_model(repo: &str, file: &str, path: &Path) -> Result<CachedModel, HubError> {
    let info = inspect(path)?;
    Ok(CachedModel {
        name: format!("{repo}/{file}"),
        path: path.to_owned(),
        format: info.format,
        quantization: parse_quantization(file).or(info.quantization),
        size_bytes: info.size_bytes,
    })
}

fn report_complete(path: &Path, on_progress: &mut dyn FnMut(Progress)) {
    let size = path.metadata().map(|m| m.len()).unwrap_or(0);
    on_progress(Progress { downloaded: size, total: Some(size) });
}

fn no_gguf(repo: &str, files: &[RepoFile]) -> HubError {
    let names: Vec<&str> =
        files.iter().map(|f| f.path.as_str()).filter(|p| !p.starts_with('.')).take(6).collect();
    let more = files.len().saturating_sub(names.len());
    let mut available = if names.is_empty() { "no files".to_owned() } else { names.join(", ") };
    if more > 0 {
        available.push_str(&format!(" and {more} more"));
    }
    if safetensors_files(files, None).is_empty() {
        available.push_str("; no safetensors model either");
    } else {
        available.push_str(&format!("; its safetensors model is `{repo}`"));
    }
    HubError::NoGguf { repo: repo.to_owned(), available }
}

fn quantizations(models: &[GgufModel]) -> String {
    let mut names: Vec<&str> = models.iter().filter_map(|m| m.quantization.as_deref()).collect();
    names.dedup();
    if names.is_empty() { "none named in the files".to_owned() } else { names.join(", ") }
}
