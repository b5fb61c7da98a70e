//! [`LocalCatalog`]: the models already in a directory, behind the [`ModelHub`] trait.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use modelforge_core::{
    CachedModel, CancelToken, HubError, ModelFileError, ModelFormat, ModelHub, ModelInfo, Progress, RepoFile,
    RepoSummary, detect_format, inspect,
};

use crate::quant::{canonical_dtype, parse_quantization};
use crate::split::parse_split_name;

/// How many directory levels below the models directory are searched. Deep enough for
/// `org/name/variant/file.gguf` and a Hugging Face cache's `models--org--name/snapshots/rev/`,
/// shallow enough that pointing the catalogue at a home directory stays quick.
const MAX_DEPTH: usize = 6;

/// How many names a "not found" error lists before saying how many more there are.
const NAMES_IN_ERRORS: usize = 5;

/// The models in one local directory, offered through the same [`ModelHub`] trait as a remote
/// hub.
///
/// The directory is scanned on every call rather than remembered, so a file copied in while
/// a server runs shows up at once and a deleted one disappears. A model is:
///
/// - a file that is GGUF *by its contents*, whatever its extension (a text file named
///   `x.gguf` is not a model, a GGUF named `x.bin` is), named by its path relative to the
///   models directory without the `.gguf` extension;
/// - the shards of a split GGUF (`name-00001-of-00003.gguf`, ...) as one model named `name`,
///   reached through its first shard, as llama.cpp loads it;
/// - a directory holding `config.json` and `.safetensors` weights, as one model named by its
///   relative path.
///
/// Files that claim to be GGUF but fail validation (typically an interrupted copy) are left
/// out with a `tracing` warning naming the file and the reason; they never fail the listing.
/// Hidden entries (`.name`) are skipped, directories are searched at most six levels deep,
/// and symbolic links are followed but never into a directory already visited, so a link
/// loop cannot hang the scan.
#[derive(Clone, Debug)]
pub struct LocalCatalog {
    models_dir: PathBuf,
}

/// A model found by a scan, with the files that make it up.
struct Entry {
    model: CachedModel,
    /// The directory the model's file paths are relative to.
    base: PathBuf,
    /// The model's files, relative to `base`, sorted.
    files: Vec<PathBuf>,
}

impl LocalCatalog {
    /// A catalogue of the models under `models_dir`. The directory need not exist yet: until
    /// it does, the catalogue is empty.
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self { models_dir: models_dir.into() }
    }

    /// The directory this catalogue lists.
    pub fn models_dir(&self) -> &Path {
        &self.models_dir
    }

    /// Finds the model a user means by `reference`: a path to a model file or safetensors
    /// directory, else a catalogue name, matched exactly, else case-insensitively, else as the
    /// unique case-insensitive prefix of one name.
    ///
    /// A path is validated with [`inspect`], and its problems are returned as
    /// [`HubError::ModelFile`]. A name that matches nothing or several models is a
    /// [`HubError::NotFound`] whose message lists the candidates.
    pub fn resolve(&self, reference: &str) -> Result<CachedModel, HubError> {
        if reference.trim().is_empty() {
            // Every name starts with "", so an empty reference would pick the only model.
            let name = "(an empty name: give a model name or a path)".to_owned();
            return Err(HubError::NotFound { what: "model", name });
        }
        let path = Path::new(reference);
        if path.exists() {
            return self.resolve_path(reference, path);
        }
        let models = self.cached()?;
        pick(&models, reference).cloned().ok_or_else(|| self.no_match(&models, reference))
    }

    fn resolve_path(&self, reference: &str, path: &Path) -> Result<CachedModel, HubError> {
        let info = inspect(path)?;
        // The catalogue knows more about its own files: a shard's whole split, a short name.
        let canonical = path.canonicalize().ok();
        if let Some(known) = self.cached()?.into_iter().find(|m| m.path.canonicalize().ok() == canonical) {
            return Ok(known);
        }
        Ok(CachedModel {
            name: reference.to_owned(),
            path: path.to_owned(),
            format: info.format,
            quantization: info
                .quantization
                .map(canonical_dtype)
                .or_else(|| file_name(path).and_then(parse_quantization)),
            size_bytes: info.size_bytes,
        })
    }

    fn no_match(&self, models: &[CachedModel], reference: &str) -> HubError {
        let lower = reference.to_lowercase();
        let names = |keep: &dyn Fn(&CachedModel) -> bool| -> Vec<&str> {
            models.iter().filter(|m| keep(m)).map(|m| m.name.as_str()).collect()
        };
        let candidates = names(&|m| m.name.to_lowercase().starts_with(&lower));
        if candidates.len() > 1 {
            return HubError::NotFound {
                what: "unique model",
                name: format!("`{reference}` matches {}; give more of the name", brief_list(&candidates)),
            };
        }
        let dir = self.models_dir.display();
        let name = if models.is_empty() {
            format!(
                "`{reference}` is not a file, and {dir} holds no models yet: place GGUF files or \
                 safetensors directories there"
            )
        } else {
            let available = brief_list(&names(&|_| true));
            format!("`{reference}` is not a file, nor the name of a model in {dir} (available: {available})")
        };
        HubError::NotFound { what: "model", name }
    }

    /// Every model under the models directory, sorted by name.
    fn scan(&self) -> Result<Vec<Entry>, HubError> {
        let _span = tracing::debug_span!("scan_models", dir = %self.models_dir.display()).entered();
        if !self.models_dir.exists() {
            return Ok(Vec::new());
        }
        // Only the top directory is fatal; a bad subdirectory is skipped with a warning.
        std::fs::read_dir(&self.models_dir).map_err(|source| HubError::Io {
            context: format!("reading the models directory {}", self.models_dir.display()),
            source,
        })?;
        let mut scan = Scan { root: &self.models_dir, visited: HashSet::new(), entries: Vec::new() };
        scan.walk(&self.models_dir, 0);
        let mut entries = scan.entries;
        entries.sort_by(|a, b| a.model.name.cmp(&b.model.name).then_with(|| a.model.path.cmp(&b.model.path)));
        Ok(entries)
    }

    /// The model named exactly `name`.
    fn entry(&self, name: &str) -> Result<Option<Entry>, HubError> {
        Ok(self.scan()?.into_iter().find(|e| e.model.name == name))
    }
}

impl ModelHub for LocalCatalog {
    fn search(&self, query: &str, limit: usize) -> Result<Vec<RepoSummary>, HubError> {
        let query = query.to_lowercase();
        Ok(self
            .cached()?
            .into_iter()
            .filter(|m| m.name.to_lowercase().contains(&query))
            .take(limit)
            .map(|m| RepoSummary {
                tags: std::iter::once(m.format.as_str().to_owned()).chain(m.quantization).collect(),
                id: m.name,
                downloads: None,
                likes: None,
            })
            .collect())
    }

    fn list_files(&self, repo: &str) -> Result<Vec<RepoFile>, HubError> {
        let entry =
            self.entry(repo)?.ok_or_else(|| HubError::NotFound { what: "model", name: repo.to_owned() })?;
        entry
            .files
            .iter()
            .map(|file| {
                Ok(RepoFile {
                    path: slash_path(file),
                    size: file_size(&entry.base.join(file))?,
                    sha256: None,
                    quantization: file_name(file).and_then(parse_quantization),
                })
            })
            .collect()
    }

    /// Returns a file of a model already in the catalogue; a local catalogue cannot fetch
    /// anything. An empty `file` means the model itself (its GGUF file, first shard or
    /// safetensors directory). Progress is reported once, complete.
    fn download(
        &self,
        repo: &str,
        file: &str,
        on_progress: &mut dyn FnMut(Progress),
        cancel: &CancelToken,
    ) -> Result<PathBuf, HubError> {
        if cancel.is_cancelled() {
            return Err(HubError::Cancelled);
        }
        let Some(entry) = self.entry(repo)? else {
            return Err(HubError::Unsupported {
                what: format!("downloading `{repo}` from a remote hub"),
                hub: format!(
                    "the local catalogue; place the model file (or safetensors directory) in {} to use it",
                    self.models_dir.display()
                ),
            });
        };
        let (path, size) = if file.is_empty() {
            (entry.model.path.clone(), entry.model.size_bytes)
        } else {
            let path = find_file(&entry, repo, file)?;
            let size = file_size(&path)?;
            (path, size)
        };
        on_progress(Progress { downloaded: size, total: Some(size) });
        Ok(path)
    }

    fn cached(&self) -> Result<Vec<CachedModel>, HubError> {
        Ok(self.scan()?.into_iter().map(|e| e.model).collect())
    }

    /// Finds `reference` with [`resolve`](Self::resolve): a local catalogue fetches nothing, so
    /// progress is reported once, complete.
    fn pull(
        &self,
        reference: &str,
        on_progress: &mut dyn FnMut(Progress),
        cancel: &CancelToken,
    ) -> Result<CachedModel, HubError> {
        if cancel.is_cancelled() {
            return Err(HubError::Cancelled);
        }
        let model = self.resolve(reference)?;
        on_progress(Progress { downloaded: model.size_bytes, total: Some(model.size_bytes) });
        Ok(model)
    }
}

/// The best catalogue match for `reference`, if there is exactly one.
fn pick<'a>(models: &'a [CachedModel], reference: &str) -> Option<&'a CachedModel> {
    let lower = reference.to_lowercase();
    let unique =
        |matches: Vec<&'a CachedModel>| if matches.len() == 1 { matches.first().copied() } else { None };
    unique(models.iter().filter(|m| m.name == reference).collect())
        .or_else(|| unique(models.iter().filter(|m| m.name.to_lowercase() == lower).collect()))
        .or_else(|| unique(models.iter().filter(|m| m.name.to_lowercase().starts_with(&lower)).collect()))
}

fn find_file(entry: &Entry, repo: &str, file: &str) -> Result<PathBuf, HubError> {
    match entry.files.iter().find(|f| slash_path(f) == file) {
        Some(f) => Ok(entry.base.join(f)),
        None => {
            let names: Vec<String> = entry.files.iter().map(|f| slash_path(f)).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            Err(HubError::NotFound {
                what: "file",
                name: format!("`{file}` in model `{repo}` (its files: {})", brief_list(&names)),
            })
        }
    }
}

/// The state of one scan of the models directory.
struct Scan<'a> {
    root: &'a Path,
    /// Canonical paths of the directories entered, so link loops end.
    visited: HashSet<PathBuf>,
    entries: Vec<Entry>,
}

impl Scan<'_> {
    fn walk(&mut self, dir: &Path, depth: usize) {
        match dir.canonicalize() {
            Ok(canonical) => {
                if !self.visited.insert(canonical) {
                    return;
                }
            }
            Err(err) => return tracing::warn!(dir = %dir.display(), "skipping a directory: {err}"),
        }
        if depth > 0 && matches!(detect_format(dir), Ok(ModelFormat::Safetensors)) {
            return self.add_safetensors_dir(dir);
        }
        let children = match sorted_children(dir) {
            Ok(children) => children,
            Err(err) => return tracing::warn!(dir = %dir.display(), "skipping a directory: {err}"),
        };
        let mut ggufs = Vec::new();
        for child in children {
            if child.is_dir() {
                if depth < MAX_DEPTH && !is_hf_blob_dir(&child) {
                    self.walk(&child, depth + 1);
                }
            } else if child.is_file() {
                ggufs.extend(gguf_info(&child));
            }
        }
        self.add_ggufs(ggufs);
    }

    fn add_safetensors_dir(&mut self, dir: &Path) {
        let files = files_under(dir, MAX_DEPTH);
        let shards = files.iter().filter(|f| f.extension().is_some_and(|e| e == "safetensors"));
        for shard in shards {
            let path = dir.join(shard);
            if !matches!(detect_format(&path), Ok(ModelFormat::Safetensors)) {
                return tracing::warn!(
                    file = %path.display(),
                    "skipping safetensors model {}: {} has no valid safetensors header (incomplete copy?)",
                    dir.display(),
                    shard.display()
                );
            }
        }
        let info = match inspect(dir) {
            Ok(info) => info,
            Err(err) => return tracing::warn!(dir = %dir.display(), "skipping safetensors model: {err}"),
        };
        let name = self.name_of(dir);
        self.entries.push(Entry {
            model: CachedModel {
                quantization: info.quantization.map(canonical_dtype).or_else(|| parse_quantization(&name)),
                name,
                path: dir.to_owned(),
                format: ModelFormat::Safetensors,
                size_bytes: info.size_bytes,
            },
            base: dir.to_owned(),
            files,
        });
    }

    /// Adds the valid GGUF files of one directory: single files as they are, shards grouped.
    fn add_ggufs(&mut self, infos: Vec<ModelInfo>) {
        let mut splits: BTreeMap<PathBuf, Vec<(u32, u32, ModelInfo)>> = BTreeMap::new();
        for info in infos {
            let split = file_name(&info.path)
                .and_then(parse_split_name)
                .map(|s| (info.path.with_file_name(s.stem), s.index, s.count));
            match split {
                Some((key, index, count)) => splits.entry(key).or_default().push((index, count, info)),
                None => self.add_gguf_file(info),
            }
        }
        for (stem_path, shards) in splits {
            self.add_split(&stem_path, shards);
        }
    }

    fn add_gguf_file(&mut self, info: ModelInfo) {
        let name = self.name_of(&info.path);
        let name = strip_gguf_extension(&name).to_owned();
        let file = PathBuf::from(info.path.file_name().unwrap_or_default());
        self.entries.push(Entry {
            model: CachedModel {
                name,
                quantization: info.quantization.or_else(|| file_name(&file).and_then(parse_quantization)),
                format: ModelFormat::Gguf,
                size_bytes: info.size_bytes,
                path: info.path.clone(),
            },
            base: info.path.parent().map(Path::to_owned).unwrap_or_default(),
            files: vec![file],
        });
    }

    /// Adds a split GGUF as one model if every shard is present and valid.
    fn add_split(&mut self, stem_path: &Path, mut shards: Vec<(u32, u32, ModelInfo)>) {
        shards.sort_by_key(|&(index, ..)| index);
        let count = shards[0].1;
        let complete = shards.len() == count as usize
            && shards.iter().enumerate().all(|(i, &(index, n, _))| index as usize == i + 1 && n == count);
        if !complete {
            let have: Vec<String> = shards.iter().map(|(i, n, _)| format!("{i} of {n}")).collect();
            return tracing::warn!(
                model = %stem_path.display(),
                "skipping split GGUF model: it needs {count} valid shards but has only [{}]",
                have.join(", ")
            );
        }
        let files: Vec<PathBuf> = shards
            .iter()
            .map(|(.., info)| PathBuf::from(info.path.file_name().unwrap_or_default()))
            .collect();
        let size_bytes = shards.iter().map(|(.., info)| info.size_bytes).sum();
        let first = shards.swap_remove(0).2;
        self.entries.push(Entry {
            model: CachedModel {
                name: self.name_of(stem_path),
                quantization: first
                    .quantization
                    .or_else(|| files.first().and_then(|f| file_name(f)).and_then(parse_quantization)),
                format: ModelFormat::Gguf,
                size_bytes,
                path: first.path.clone(),
            },
            base: first.path.parent().map(Path::to_owned).unwrap_or_default(),
            files,
        });
    }

    /// A path's name in the catalogue: relative to the models directory, `/`-separated.
    fn name_of(&self, path: &Path) -> String {
        slash_path(path.strip_prefix(self.root).unwrap_or(path))
    }
}

/// The metadata of `path` if it is a valid GGUF file. Other formats are silently not models
/// here; a broken GGUF is worth a warning.
fn gguf_info(path: &Path) -> Option<ModelInfo> {
    match detect_format(path) {
        Ok(ModelFormat::Gguf) => inspect(path)
            .inspect_err(|err| tracing::warn!(file = %path.display(), "skipping unusable GGUF file: {err}"))
            .ok(),
        Ok(ModelFormat::Safetensors) => {
            tracing::debug!(file = %path.display(), "a safetensors file without config.json is not a model");
            None
        }
        Err(err @ ModelFileError::Io { .. }) => {
            tracing::warn!(file = %path.display(), "skipping a file: {err}");
            None
        }
        Err(_) => None,
    }
}

/// A Hugging Face cache keeps content-addressed `blobs/` beside `snapshots/` that link to
/// them by their real names: list the snapshots, not the same files again under hashes.
fn is_hf_blob_dir(dir: &Path) -> bool {
    dir.file_name().is_some_and(|n| n == "blobs") && dir.with_file_name("snapshots").is_dir()
}

/// The visible entries of `dir`, sorted so scans are deterministic.
fn sorted_children(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    children.sort();
    Ok(children)
}

/// The visible files under `dir`, relative to it, at most `depth` levels down, sorted.
fn files_under(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for child in sorted_children(dir).unwrap_or_default() {
        if child.is_file() {
            files.extend(child.strip_prefix(dir).ok().map(Path::to_owned));
        } else if child.is_dir() && depth > 0 {
            let sub = child.strip_prefix(dir).map(Path::to_owned).unwrap_or_default();
            files.extend(files_under(&child, depth - 1).into_iter().map(|f| sub.join(f)));
        }
    }
    files
}

fn file_size(path: &Path) -> Result<u64, HubError> {
    Ok(std::fs::metadata(path)
        .map_err(|source| HubError::Io {
            context: format!("reading the size of {}", path.display()),
            source,
        })?
        .len())
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name()?.to_str()
}

fn slash_path(path: &Path) -> String {
    let parts: Vec<_> = path.components().map(|c| c.as_os_str().to_string_lossy()).collect();
    parts.join("/")
}

fn strip_gguf_extension(name: &str) -> &str {
    let cut = name.len().saturating_sub(".gguf".len());
    if name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(".gguf") && cut > 0 {
        &name[..cut]
    } else {
        name
    }
}

/// `a, b, c and 4 more`.
fn brief_list(names: &[&str]) -> String {
    let shown = names.iter().take(NAMES_IN_ERRORS).copied().collect::<Vec<_>>().join(", ");
    match names.len().saturating_sub(NAMES_IN_ERRORS) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}
