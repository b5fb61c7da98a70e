//! Finding and fetching models for ModelForge: implementations of
//! [`ModelHub`](modelforge_core::ModelHub).
//!
//! An application asks one question, "which models can I use, and where is this one on
//! disk?", whether the answer comes from a directory of GGUF files or from the Hugging Face
//! Hub. That is why the local [`LocalCatalog`] and the remote [`HfHub`] implement the same
//! trait: the CLI's `models list` and `pull`, the server's `/v1/models` and its model picker
//! take an `Arc<dyn ModelHub>` and work offline, in tests, and against the network without a
//! change.
//!
//! ```no_run
//! use modelforge_core::{CancelToken, ModelHub};
//! use modelforge_hub::HfHub;
//!
//! // HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE / HF_HOME and HF_HUB_OFFLINE are honoured.
//! let hub = HfHub::from_env();
//! let model = hub.pull("bartowski/Qwen2.5-0.5B-Instruct-GGUF", &mut |p| {
//!     eprint!("\r{} of {:?} bytes", p.downloaded, p.total);
//! }, &CancelToken::new())?;
//! println!("{} ({:?}) is at {}", model.name, model.quantization, model.path.display());
//! # Ok::<(), modelforge_core::HubError>(())
//! ```
//!
//! # Naming models
//!
//! One grammar, [`ModelRef`], is used everywhere a model is named: `org/repo` (the default
//! quantization, [`DEFAULT_QUANTIZATION`] like Ollama and llama-server, else the closest by
//! [`QUANTIZATION_PREFERENCE`]; a safetensors repository gives its config, tokenizer and every
//! weight shard), `org/repo:Q8_0`, `org/repo/path/to/file.gguf`, or a local path. Split GGUF
//! sets (`-00001-of-00003.gguf`) are one model. Quantization comes from file names through
//! [`parse_quantization`], since a remote listing has nothing else before a download.
//!
//! # Downloads and the cache
//!
//! Files go into the huggingface_hub cache layout (see [`HfCache`]), so Python tools and
//! ModelForge share downloads. A download is resumed with `Range` after an interruption, its
//! SHA-256 (or git blob hash, for small non-LFS files) is checked before the file takes its
//! real name, and a lock file keeps two processes from writing the same file.
//!
//! Why not the `hf-hub` crate's downloader: its synchronous API brings its own `ureq` 2 client
//! with its own download loop, which neither resumes an interrupted download with `Range` nor
//! checks the SHA-256, and it has no search or tree listing. This crate uses `hf-hub` (without
//! default features, so without any HTTP client) for the cache-layout helpers it does share
//! with the Python client (folder names, refs), and talks to the Hub's HTTP API itself with a
//! small blocking `ureq` 3 client (rustls for https).
//!
//! # The local catalogue
//!
//! Models are recognised by their contents, never their names (a GGUF file called `.bin` is
//! a model; a text file called `.gguf` is not), and a broken file is skipped with a warning
//! rather than failing the whole listing, so one interrupted copy cannot hide every other
//! model.
//!
//! ```
//! use modelforge_core::ModelHub;
//! use modelforge_hub::LocalCatalog;
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("notes.gguf"), "not a model, whatever its name")?;
//! let catalog = LocalCatalog::new(dir.path());
//! assert!(catalog.cached()?.is_empty());
//!
//! let err = catalog.resolve("llama").unwrap_err();
//! assert!(err.to_string().contains("holds no models yet"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
// Library code returns errors; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod api;
mod cache;
mod catalog;
mod download;
mod options;
mod quant;
mod reference;
mod remote;
mod selection;
mod split;

pub use api::{SearchOptions, SearchSort};
pub use cache::HfCache;
pub use catalog::LocalCatalog;
pub use options::{DEFAULT_ENDPOINT, HfHubOptions, OFFLINE_ENV, TOKEN_ENV};
pub use quant::parse_quantization;
pub use reference::{ModelRef, Selector};
pub use remote::{HfHub, ModelPlan, Removed};
pub use selection::{
    DEFAULT_QUANTIZATION, GgufModel, QUANTIZATION_PREFERENCE, choose_default, gguf_models, safetensors_files,
};
