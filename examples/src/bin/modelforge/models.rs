//! `modelforge models ...` and `modelforge pull`: finding, fetching, listing and removing
//! models, from the Hugging Face Hub (or any server speaking its API, via `HF_ENDPOINT`) and
//! DATA_DIR/models.

use std::path::Path;
use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use modelforge_core::{CachedModel, CancelToken, HubError, ModelHub, RepoFile, RepoSummary};
use modelforge_examples::setup;
use modelforge_hub::{HfHub, ModelRef, SearchOptions, choose_default, gguf_models, safetensors_files};
use serde_json::json;

use crate::output;

/// `modelforge models` subcommands.
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Models on this machine: DATA_DIR/models and the Hugging Face cache.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Search repositories on the Hub.
    Search {
        /// Words the repository id contains.
        query: String,
        /// Only repositories with GGUF files.
        #[arg(long)]
        gguf: bool,
        /// At most this many results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A repository's files, and the models they make.
    Files {
        /// `org/repo`.
        repo: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a model from the Hugging Face cache: `org/repo` (everything), `org/repo:QUANT` or
    /// `org/repo/file`.
    Rm {
        /// The model reference.
        reference: String,
    },
}

/// Arguments of `modelforge pull`.
#[derive(Args)]
pub struct PullArgs {
    /// `org/repo` (default quantization, Q4_K_M when there is one), `org/repo:Q8_0`,
    /// `org/repo/path/file.gguf`, or a safetensors repository.
    reference: String,
    /// Print the model as JSON instead of a sentence.
    #[arg(long)]
    json: bool,
}

/// Runs `modelforge models [SUBCOMMAND]`; without one, `list`.
pub fn run(data_dir: &Path, command: Option<ModelsCommand>, json: bool) -> anyhow::Result<()> {
    match command.unwrap_or(ModelsCommand::List { json }) {
        ModelsCommand::List { json } => list(data_dir, json),
        ModelsCommand::Search { query, gguf, limit, json } => {
            let search = SearchOptions { query, gguf_only: gguf, limit, ..SearchOptions::default() };
            search_results(&setup::hub().search_with(&search)?, json)
        }
        ModelsCommand::Files { repo, json } => files(&repo, &setup::hub().list_files(&repo)?, json),
        ModelsCommand::Rm { reference } => remove(data_dir, &reference),
    }
}

/// Runs `modelforge pull REF` with a progress bar.
pub fn pull(args: PullArgs) -> anyhow::Result<()> {
    let hub = setup::hub();
    let bar = ProgressBar::new(0).with_message(args.reference.clone());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta} left",
        )?
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    // Ctrl-C stops the download cleanly, keeping what has arrived for the next pull.
    let cancel = CancelToken::new();
    let on_interrupt = cancel.clone();
    ctrlc::set_handler(move || on_interrupt.cancel())?;
    let result = hub.pull(
        &args.reference,
        &mut |p| {
            bar.set_length(p.total.unwrap_or(p.downloaded));
            bar.set_position(p.downloaded);
        },
        &cancel,
    );
    bar.finish_and_clear();
    if let Err(HubError::Cancelled) = result {
        anyhow::bail!(
            "interrupted: the part downloaded so far is kept; `modelforge pull {}` resumes it",
            args.reference
        );
    }
    let model = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&model)?);
    } else {
        println!(
            "{} ({}, {}, {}) is at {}",
            model.name,
            model.format.as_str(),
            model.quantization.as_deref().unwrap_or("-"),
            human_size(model.size_bytes),
            model.path.display()
        );
    }
    Ok(())
}

/// DATA_DIR/models first (their short names), then the Hugging Face cache.
fn list(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let mut models: Vec<CachedModel> = setup::catalog(data_dir).cached()?;
    models.extend(setup::hub().cached()?);
    let described: Vec<_> = models
        .into_iter()
        .map(|m| {
            let description = setup::describe_model(&m.path, None, None);
            (m, description)
        })
        .collect();
    output::models(&described, json)
}

fn search_results(repos: &[RepoSummary], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(repos)?);
        return Ok(());
    }
    if repos.is_empty() {
        println!("no repositories found");
    }
    for r in repos {
        let count = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        println!("{:<60} {:>10} downloads {:>7} likes", r.id, count(r.downloads), count(r.likes));
    }
    Ok(())
}

/// The files, then the models they make with the reference that pulls each.
fn files(repo: &str, files: &[RepoFile], json: bool) -> anyhow::Result<()> {
    let gguf = gguf_models(files);
    let default = choose_default(&gguf).map(|m| m.first_file().to_owned());
    let mut models: Vec<serde_json::Value> = gguf
        .iter()
        .map(|m| {
            let reference = match &m.quantization {
                Some(q) if gguf.iter().filter(|o| o.quantization.as_ref() == Some(q)).count() == 1 => {
                    format!("{repo}:{q}")
                }
                _ => format!("{repo}/{}", m.first_file()),
            };
            json!({
                "reference": reference,
                "format": "gguf",
                "quantization": m.quantization,
                "files": m.files.len(),
                "size": m.size(),
                "default": default.as_deref() == Some(m.first_file()),
            })
        })
        .collect();
    let safetensors = safetensors_files(files, None);
    if !safetensors.is_empty() {
        models.push(json!({
            "reference": repo,
            "format": "safetensors",
            "quantization": null,
            "files": safetensors.len(),
            "size": safetensors.iter().map(|f| f.size).sum::<u64>(),
            "default": default.is_none(),
        }));
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "repo": repo, "files": files, "models": models }))?
        );
        return Ok(());
    }
    for f in files {
        let sha = f.sha256.as_deref().map_or("-", |s| &s[..s.len().min(12)]);
        let quant = f.quantization.as_deref().unwrap_or("-");
        println!("{:<60} {:>10}  {quant:<8} {sha}", f.path, human_size(f.size));
    }
    println!();
    if models.is_empty() {
        println!("no GGUF or safetensors model in {repo}");
    }
    for m in &models {
        let default = if m["default"] == true { "  (default)" } else { "" };
        println!(
            "model {:<60} {:<12} {:>3} file(s) {:>10}{default}",
            m["reference"].as_str().unwrap_or_default(),
            m["format"].as_str().unwrap_or_default(),
            m["files"],
            human_size(m["size"].as_u64().unwrap_or_default())
        );
    }
    Ok(())
}

fn remove(data_dir: &Path, reference: &str) -> anyhow::Result<()> {
    if !matches!(ModelRef::parse(reference), Ok(ModelRef::Hub { .. })) {
        anyhow::bail!(
            "`{reference}` is not a Hugging Face reference (`org/repo[:QUANT]`); models in {} are \
             your own files: delete them yourself",
            setup::catalog(data_dir).models_dir().display()
        );
    }
    let hub: HfHub = setup::hub();
    let removed = hub.remove(reference)?;
    println!("removed {} ({} freed)", removed.name, human_size(removed.bytes_freed));
    Ok(())
}

/// `812 B`, `3.4 kB`, `98.4 MB`, `4.1 GB`.
fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < units.len() {
        size /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{size:.1} {}", units[unit]) }
}
