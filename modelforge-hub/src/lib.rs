//! Finding and fetching models for ModelForge: implementations of
//! [`ModelHub`](modelforge_core::ModelHub).
//!
//! An application asks one question, "which models can I use, and where is this one on
//! disk?", whether the answer comes from a directory of GGUF files or from the Hugging Face
//! Hub. That is why the local [`LocalCatalog`] implements the same trait the remote hub
//! client will: the CLI's `list` and `pull`, the server's `/v1/models` and its model picker
//! take an `Arc<dyn ModelHub>` and work offline, in tests, and against the network without a
//! change. The catalogue is also the offline half of the remote hub: what is already on disk
//! is served from there.
//!
//! Models are recognised by their contents, never their names (a GGUF file called `.bin` is
//! a model; a text file called `.gguf` is not), and a broken file is skipped with a warning
//! rather than failing the whole listing, so one interrupted copy cannot hide every other
//! model. Quantization comes from the file's own metadata when it has any, else from its name
//! through [`parse_quantization`], which is also what a remote listing relies on.
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

mod catalog;
mod quant;
mod split;

pub use catalog::LocalCatalog;
pub use quant::parse_quantization;
